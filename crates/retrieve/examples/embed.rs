//! Embedding throughput, for `bench/collections/embed.py`: embeds the texts of a
//! JSON-lines file (one JSON string per line) with a local model and prints one
//! JSON line with the count, the seconds taken and the first vector's head.
//!
//! cargo run --release -p sluice-retrieve --example embed -- \
//!     --texts FILE [--model DIR] [--threads N] [--repeat R] [--out VECTORS.f32]
//!
//! `--out` writes the vectors as little-endian f32, row after row.
//!
//! ONNX Runtime's library is `SLUICE_ONNXRUNTIME`.

use std::path::PathBuf;
use std::time::Instant;

use sluice_retrieve::embed::{Embedder, OnnxEmbedder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut texts_path = None;
    let mut model = sluice_retrieve::model::model_dir(sluice_retrieve::model::DEFAULT_MODEL);
    let mut threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut repeat = 1;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--texts" => texts_path = Some(PathBuf::from(value)),
            "--model" => model = PathBuf::from(value),
            "--threads" => threads = value.parse()?,
            "--repeat" => repeat = value.parse()?,
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {arg}").into()),
        }
    }
    let texts_path = texts_path.ok_or("--texts FILE is required")?;
    let texts: Vec<String> = std::fs::read_to_string(&texts_path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let library = std::env::var_os("SLUICE_ONNXRUNTIME").ok_or("set SLUICE_ONNXRUNTIME")?;
    let env = ort::init_from(PathBuf::from(library))?
        .with_name("embed-bench")
        .build()?;
    let started = Instant::now();
    let embedder = OnnxEmbedder::load(&env, &model, threads)?;
    let load = started.elapsed().as_secs_f64();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut best = f64::INFINITY;
    let mut vectors = vec![];
    for _ in 0..repeat {
        let started = Instant::now();
        vectors = embedder.embed(&refs)?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    if let Some(out) = out {
        let bytes: Vec<u8> = vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(out, bytes)?;
    }
    let head: Vec<f32> = vectors.iter().take(4).copied().collect();
    println!(
        "{}",
        serde_json::json!({
            "texts": texts.len(),
            "threads": threads,
            "load_seconds": load,
            "seconds": best,
            "dim": embedder.dim(),
            "head": head,
        })
    );
    Ok(())
}
