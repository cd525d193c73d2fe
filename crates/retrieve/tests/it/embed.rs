//! The local embedding model against sentence-transformers: the vectors of
//! `testdata/embeddings/reference.json` (25 sentences, one past the model's
//! 256-token limit, computed in Python in fp32) must be equal to cosine 0.999.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use sluice_retrieve::embed::{Embedder, OnnxEmbedder, cosine};
use sluice_retrieve::model;

/// The model and ONNX Runtime, or `None` (skipped) outside CI when either is
/// missing; under `CI=true` a missing one fails the test.
fn embedder() -> Option<OnnxEmbedder> {
    let dir = model::model_dir(model::DEFAULT_MODEL);
    let library = std::env::var_os("SLUICE_ONNXRUNTIME").map(PathBuf::from);
    let ready = dir.join("model.onnx").is_file() && library.as_ref().is_some_and(|l| l.is_file());
    if !ready {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide the model (scripts/fetch-model.sh) and SLUICE_ONNXRUNTIME (.ci/run does both)"
        );
        eprintln!(
            "skipped: no model.onnx in {} or no SLUICE_ONNXRUNTIME",
            dir.display()
        );
        return None;
    }
    static ENV: OnceLock<Environment> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        ort::init_from(library.expect("checked"))
            .expect("load ONNX Runtime")
            .with_name("sluice-retrieve-tests")
            .build()
            .expect("start ONNX Runtime")
    });
    Some(OnnxEmbedder::load(env, &dir, 2).expect("load the model"))
}

fn reference() -> (Vec<String>, Vec<Vec<f32>>) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/embeddings/reference.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("reference.json"))
            .expect("json");
    let sentences = json["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| s.as_str().expect("sentence").to_string())
        .collect();
    let vectors = json["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            v.as_array()
                .expect("vector")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect()
        })
        .collect();
    (sentences, vectors)
}

#[test]
fn vectors_equal_sentence_transformers() {
    let Some(model) = embedder() else { return };
    let (sentences, expected) = reference();
    assert_eq!(model.dim(), 384);
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    // Batched (sorted by length, padded) and one at a time give the same vectors.
    let batched = model.embed(&texts).expect("embed");
    let mut worst = (1.0_f32, "");
    for (i, text) in texts.iter().enumerate() {
        let got = &batched[i * 384..(i + 1) * 384];
        let alone = model.embed(&[text]).expect("embed one");
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text:?}: norm {norm}");
        assert!(
            cosine(got, &alone) > 0.99999,
            "{text:?}: batched differs from alone"
        );
        let c = cosine(got, &expected[i]);
        if c < worst.0 {
            worst = (c, text);
        }
    }
    assert!(worst.0 >= 0.999, "cosine {} for {:?}", worst.0, worst.1);
    assert!(model.embed(&[]).expect("nothing").is_empty());
}
