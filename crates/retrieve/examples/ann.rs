//! Benchmark driver for `sluice_retrieve::hnsw`, run by `bench/collections/ann.py`.
//!
//! ```text
//! cargo run --release -p sluice-retrieve --example ann -- \
//!     --base base.bin --queries queries.bin --dim 384 [--truth truth.bin] \
//!     [--m 16] [--efc 200] [--ef 16,32,64,128,256] [--k 10] [--threads 1] \
//!     [--runs 2] [--save index.bin | --load index.bin]
//! ```
//!
//! `base.bin` and `queries.bin` are raw little-endian f32 rows of `dim` floats;
//! `truth.bin` holds, per query, the ids (u32 little-endian) of its `k` exact
//! nearest neighbours. Prints one JSON object per line: `build`, optionally
//! `save`, then one `search` per ef (single thread, best of `--runs` passes).
//! `--ef ""` only builds; `--load` searches a saved index instead of building
//! (its `build` line then times the read).

use std::collections::HashSet;
use std::error::Error;
use std::fs;
use std::io::{BufReader, BufWriter};
use std::time::Instant;

use sluice_retrieve::hnsw::{Hnsw, Params};

struct Args {
    base: String,
    queries: String,
    truth: Option<String>,
    dim: usize,
    m: usize,
    efc: usize,
    ef: Vec<usize>,
    k: usize,
    threads: usize,
    runs: usize,
    save: Option<String>,
    load: Option<String>,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut a = Args {
        base: String::new(),
        queries: String::new(),
        truth: None,
        dim: 0,
        m: 16,
        efc: 200,
        ef: vec![16, 32, 64, 128, 256],
        k: 10,
        threads: 1,
        runs: 2,
        save: None,
        load: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--base" => a.base = value,
            "--queries" => a.queries = value,
            "--truth" => a.truth = Some(value),
            "--dim" => a.dim = value.parse()?,
            "--m" => a.m = value.parse()?,
            "--efc" => a.efc = value.parse()?,
            "--ef" => {
                a.ef = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--k" => a.k = value.parse()?,
            "--threads" => a.threads = value.parse()?,
            "--runs" => a.runs = value.parse()?,
            "--save" => a.save = Some(value),
            "--load" => a.load = Some(value),
            _ => return Err(format!("unknown argument {flag}").into()),
        }
    }
    if a.base.is_empty() || a.queries.is_empty() || a.dim == 0 {
        return Err("--base, --queries and --dim are required".into());
    }
    Ok(a)
}

fn read_f32s(path: &str, dim: usize) -> Result<Vec<f32>, Box<dyn Error>> {
    let bytes = fs::read(path)?;
    if bytes.len() % (4 * dim) != 0 {
        return Err(format!(
            "{path}: {} bytes is not a whole number of {dim}-float rows",
            bytes.len()
        )
        .into());
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn read_u32s(path: &str) -> Result<Vec<u32>, Box<dyn Error>> {
    let bytes = fs::read(path)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = parse_args()?;
    let base = read_f32s(&a.base, a.dim)?;
    let queries = read_f32s(&a.queries, a.dim)?;
    let truth = a.truth.as_deref().map(read_u32s).transpose()?;
    let (n, nq) = (base.len() / a.dim, queries.len() / a.dim);

    let t = Instant::now();
    let index = if let Some(path) = &a.load {
        Hnsw::read(&mut BufReader::new(fs::File::open(path)?))?
    } else {
        let mut index = Hnsw::new(
            a.dim,
            Params {
                m: a.m,
                ef_construction: a.efc,
                seed: 1,
            },
        );
        index.insert_many(&base, a.threads);
        index
    };
    let build = t.elapsed().as_secs_f64();
    println!(
        r#"{{"event":"{}","n":{n},"dim":{},"m":{},"efc":{},"threads":{},"seconds":{build:.3},"memory_bytes":{}}}"#,
        if a.load.is_some() { "load" } else { "build" },
        a.dim,
        a.m,
        a.efc,
        a.threads,
        index.memory_bytes()
    );

    if let Some(path) = &a.save {
        let t = Instant::now();
        let mut out = BufWriter::new(fs::File::create(path)?);
        index.write(&mut out)?;
        drop(out);
        let write = t.elapsed().as_secs_f64();
        let bytes = fs::metadata(path)?.len();
        let t = Instant::now();
        let loaded = Hnsw::read(&mut BufReader::new(fs::File::open(path)?))?;
        let read = t.elapsed().as_secs_f64();
        if loaded.len() != index.len() {
            return Err("the index read back has a different size".into());
        }
        println!(
            r#"{{"event":"save","bytes":{bytes},"write_seconds":{write:.3},"read_seconds":{read:.3}}}"#
        );
    }

    for &ef in &a.ef {
        let mut best = f64::INFINITY;
        let mut results = Vec::with_capacity(nq);
        for _ in 0..a.runs.max(1) {
            results.clear();
            let t = Instant::now();
            for q in queries.chunks_exact(a.dim) {
                results.push(index.search(q, a.k, ef, None));
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        let recall = truth.as_ref().map_or(-1.0, |truth| {
            let per = truth.len() / nq.max(1);
            let mut hits = 0usize;
            for (i, got) in results.iter().enumerate() {
                let want: HashSet<u32> = truth[i * per..i * per + a.k.min(per)]
                    .iter()
                    .copied()
                    .collect();
                hits += got.iter().filter(|r| want.contains(&r.0)).count();
            }
            #[allow(clippy::cast_precision_loss)]
            let r = hits as f64 / (nq * a.k.min(per)).max(1) as f64;
            r
        });
        #[allow(clippy::cast_precision_loss)]
        let qps = nq as f64 / best;
        println!(
            r#"{{"event":"search","ef":{ef},"k":{},"queries":{nq},"recall":{recall:.4},"qps":{qps:.1}}}"#,
            a.k
        );
    }
    Ok(())
}
