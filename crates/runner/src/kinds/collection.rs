//! Collections: documents (files, or an asset's rows) cut into chunks by their
//! structure and published as a Delta table, one row per chunk. Incremental by
//! content: a document whose hash is the one the published version holds keeps
//! its chunks, read back from that version and not chunked again; a changed one
//! is chunked again; one that is gone leaves the table. The new version is one
//! Delta commit, so a build killed at any moment leaves the previous one whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use sluice_core::AssetStatus;
use sluice_project::{
    Asset, CollectionDef, Diagnostic, Documents, Embedding, Project, fingerprint,
};
use sluice_retrieve::{ChunkOptions, Format, content_hash};

use super::{Job, Kind, Published, delta};

mod embedding;
mod index;

use crate::Workspace;
use crate::outcome::{AssetOutcome, CollectionOutcome, Failure};
use crate::pins::{Pins, pinned_fingerprint, register_inputs};
use embedding::{embed, embedding_type, reusable};
use index::index;

/// `[collections.NAME]`.
pub(crate) struct Collection<'a> {
    pub asset: &'a Asset,
    pub def: &'a CollectionDef,
}

/// The columns every chunk table has (with `embedding` and `embedded_by` when
/// the collection is embedded), before a collection of rows' metadata.
pub(crate) fn chunk_schema(embedded: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("document_id", DataType::Utf8, false),
        Field::new("chunk_index", DataType::Int32, false),
        Field::new("chunk_id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, true),
        Field::new("heading_path", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("tokens", DataType::Int32, false),
        Field::new("document_hash", DataType::Utf8, false),
        Field::new("content_hash", DataType::Utf8, false),
    ];
    if embedded {
        fields.push(Field::new("embedding", embedding_type(), true));
        fields.push(Field::new("embedded_by", DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// One document to chunk.
struct Document {
    id: String,
    text: String,
    format: Format,
}

#[async_trait]
impl Kind for Collection<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    async fn fingerprint(
        &self,
        ws: &Workspace,
        asset: &Asset,
        pins: &Pins,
    ) -> Result<String, Failure> {
        // The local model's files as they are now: fetching another model
        // makes the collection stale (its identity, their hash, then decides
        // which chunks are embedded again).
        let model = match &self.def.embedding {
            Embedding::Local { model } => crate::embedders::local_stamp(model),
            _ => String::new(),
        };
        if !matches!(self.def.documents, Documents::Files { .. }) {
            return Ok(fingerprint(&[&pinned_fingerprint(ws, asset, pins), &model]));
        }
        let files = self.files().await?;
        let asset_fp = fingerprint(&[&asset.fingerprint, &model]);
        // The documents' ids (their paths), not only their names and bytes:
        // a file moved to another folder is another document.
        let ids = files
            .iter()
            .map(|f| self.def.document_id(f))
            .collect::<Vec<_>>()
            .join("\n");
        tokio::task::spawn_blocking(move || {
            let content = sluice_source::content_hash(&files).map_err(|e| Failure::of(&e))?;
            Ok(fingerprint(&[&asset_fp, &content, &ids]))
        })
        .await
        .map_err(Failure::task)?
    }

    fn changed(&self) -> &'static str {
        "its documents or definition changed"
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        let outcome = match self.build_chunks(job).await {
            Ok(outcome) => outcome,
            Err(e) => return job.failed(e),
        };
        match (outcome.status, outcome.version) {
            (AssetStatus::Built, Some(version)) => {
                let keep_from = job.previous().unwrap_or(version);
                match index(
                    job.ws,
                    self.asset.name.as_str(),
                    version,
                    keep_from,
                    self.embedded(),
                )
                .await
                {
                    Ok(()) => outcome,
                    // The version is committed; the next run makes its indexes.
                    Err(e) => AssetOutcome {
                        version: Some(version),
                        ..job.failed(e)
                    },
                }
            }
            _ => outcome,
        }
    }

    /// An up-to-date collection whose indexes a crash left unmade gets them.
    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        if let Some(version) = job.previous()
            && let Err(e) = index(
                job.ws,
                self.asset.name.as_str(),
                version,
                version,
                self.embedded(),
            )
            .await
        {
            return job.failed(e);
        }
        job.up_to_date()
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let Documents::Rows {
            from,
            id,
            text,
            metadata,
        } = &self.def.documents
        else {
            return Ok(Some(chunk_schema(self.embedded())));
        };
        let at = self.asset.location.clone();
        let provider = ctx
            .table_provider(from.as_str())
            .await
            .map_err(|e| Diagnostic::new(at.clone(), e.to_string()))?;
        let input = provider.schema();
        let mut fields: Vec<Field> = chunk_schema(self.embedded())
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for (key, column) in [("id", id), ("text", text)]
            .into_iter()
            .chain(metadata.iter().map(|m| ("metadata", m)))
        {
            let Ok(field) = input.field_with_name(column) else {
                let have: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Diagnostic::new(
                    at,
                    format!(
                        "collection `{}`: `{key}` names `{column}`, which `{from}` does not have",
                        self.asset.name
                    ),
                )
                .with_help(format!("its columns are: {}", have.join(", "))));
            };
            if key == "metadata" {
                if fields.iter().any(|f| f.name() == column) {
                    return Err(Diagnostic::new(
                        at,
                        format!(
                            "collection `{}`: metadata column `{column}` has the name of a chunk column",
                            self.asset.name
                        ),
                    )
                    .with_help("rename it in `from`'s query"));
                }
                fields.push(field.clone().with_nullable(true));
            }
        }
        Ok(Some(Arc::new(Schema::new(fields))))
    }
}

impl Collection<'_> {
    /// Whether its chunks are embedded.
    fn embedded(&self) -> bool {
        self.def.embedding != Embedding::None
    }

    /// The document files, at least one.
    async fn files(&self) -> Result<Vec<std::path::PathBuf>, Failure> {
        let def = self.def.clone();
        tokio::task::spawn_blocking(move || {
            let files = def.files().map_err(|e| Failure::of(&e))?;
            if files.is_empty() {
                let path = match &def.documents {
                    Documents::Files { path, .. } => path.clone(),
                    Documents::Rows { .. } => String::new(),
                };
                return Err(Failure::from(format!(
                    "no file matches `{path}`\n  help: check the collection's `path`; it is relative to the project folder"
                )));
            }
            Ok(files)
        })
        .await
        .map_err(Failure::task)?
    }

    async fn build_chunks(&self, job: &Job<'_>) -> Result<AssetOutcome, Failure> {
        let ctx = sluice_transform::session();
        register_inputs(job.ws, &ctx, job.pins)
            .await
            .map_err(|e| Failure::runner(&e))?;
        let documents = self.documents(&ctx).await?;
        let embedder =
            crate::embedders::embedder(&self.def.embedding).map_err(|e| Failure::of(&e))?;
        let identity = embedder
            .as_ref()
            .map(|e| e.identity().to_string())
            .unwrap_or_default();

        // What the published version holds, by document.
        let previous = match job.latest() {
            Some(latest) => {
                let provider =
                    delta::version_provider(job.ws, &ctx, self.asset.name.as_str(), latest.version)
                        .await?;
                ctx.register_table("previous", provider)
                    .map_err(|e| Failure::from(e.to_string()))?;
                document_hashes(&ctx).await?
            }
            None => BTreeMap::new(),
        };
        let mut counts = CollectionOutcome {
            documents: documents.len() as u64,
            ..CollectionOutcome::default()
        };
        let mut unchanged = BTreeSet::new();
        let mut fresh = vec![];
        for doc in documents {
            // The text under this definition and model: other sizes, another
            // format, a new chunker or another model's files make every
            // document's chunks anew.
            let hash = content_hash(&format!(
                "{}\n{identity}\n{}",
                self.asset.fingerprint, doc.text
            ));
            match previous.get(&doc.id) {
                Some(old) if *old == hash => {
                    unchanged.insert(doc.id);
                }
                _ => fresh.push((doc, hash)),
            }
        }
        let current: BTreeSet<String> = unchanged
            .iter()
            .chain(fresh.iter().map(|(d, _)| &d.id))
            .cloned()
            .collect();
        counts.deleted = previous.keys().filter(|id| !current.contains(*id)).count() as u64;
        counts.unchanged = unchanged.len() as u64;

        let options = ChunkOptions {
            max_tokens: self.def.max_tokens,
            overlap: self.def.overlap,
        };
        let embedded = self.embedded();
        let (batch, inputs, (added, changed)) = tokio::task::spawn_blocking(move || {
            let (batch, made, inputs) = chunk_documents(&fresh, &options, embedded)?;
            // A document with no chunks (blank, or only furniture) leaves no
            // trace in the table: it is not "added", then or at the next run;
            // one that had chunks and has none now changed.
            let mut added = 0;
            let mut changed = 0;
            for ((doc, _), n) in fresh.iter().zip(&made) {
                match (previous.contains_key(&doc.id), *n > 0) {
                    (true, _) => changed += 1,
                    (false, true) => added += 1,
                    (false, false) => {}
                }
            }
            Ok::<_, Failure>((batch, inputs, (added, changed)))
        })
        .await
        .map_err(Failure::task)??;
        counts.added = added;
        counts.changed = changed;
        counts.chunked = batch.num_rows() as u64;
        let batch = match &embedder {
            Some(embedder) => {
                let reuse = if job.latest().is_some() {
                    reusable(&ctx, &batch, &identity).await?
                } else {
                    HashMap::new()
                };
                let embedder = embedder.clone();
                let name = self.asset.name.to_string();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let mut work = tokio::task::spawn_blocking(move || {
                    let report = |done, total| {
                        let _ = tx.send((done, total));
                    };
                    embed(&name, &batch, &inputs, reuse, embedder.as_ref(), &report)
                });
                // The embedding's progress reaches the run's observer (a
                // progress bar) while it works. Reports first: each is sent
                // before the work ends, so the last one is never dropped.
                let (batch, embedded) = loop {
                    tokio::select! {
                        biased;
                        Some((done, total)) = rx.recv() => {
                            if let Some(observer) = job.progress {
                                observer.progress(
                                    self.asset.name.as_str(),
                                    "chunks embedded",
                                    done,
                                    total,
                                );
                            }
                        }
                        joined = &mut work => break joined.map_err(Failure::task)??,
                    }
                };
                counts.embedded = embedded;
                batch
            }
            None => batch,
        };
        let schema = batch.schema();
        let table = MemTable::try_new(schema, vec![vec![batch]])
            .map_err(|e| Failure::from(e.to_string()))?;
        ctx.register_table("fresh", Arc::new(table))
            .map_err(|e| Failure::from(e.to_string()))?;
        let columns = chunk_schema(self.embedded())
            .fields()
            .iter()
            .map(|f| format!("\"{}\"", f.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("SELECT {columns} FROM fresh");
        if !unchanged.is_empty() {
            let keep = MemTable::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "document_id",
                    DataType::Utf8,
                    false,
                )])),
                vec![vec![ids_batch(&unchanged)?]],
            )
            .map_err(|e| Failure::from(e.to_string()))?;
            ctx.register_table("kept", Arc::new(keep))
                .map_err(|e| Failure::from(e.to_string()))?;
            sql = format!(
                "SELECT {columns} FROM previous WHERE document_id IN (SELECT document_id FROM kept) \
                 UNION ALL {sql}"
            );
        }
        let sql = match &self.def.documents {
            Documents::Rows {
                from, id, metadata, ..
            } if !metadata.is_empty() => {
                // Metadata is the document's as it is now, even where its text
                // (and so its chunks) did not change.
                let meta = metadata
                    .iter()
                    .map(|m| format!("d.\"{m}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "SELECT c.*, {meta} FROM ({sql}) AS c \
                     JOIN (SELECT CAST(\"{id}\" AS VARCHAR) AS document_id, {} FROM \"{from}\") AS d \
                     USING (document_id) ORDER BY document_id, chunk_index",
                    metadata
                        .iter()
                        .map(|m| format!("\"{m}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            _ => format!("SELECT * FROM ({sql}) ORDER BY document_id, chunk_index"),
        };
        let plan = ctx
            .sql(&sql)
            .await
            .map_err(|e| Failure::from(e.to_string()))?
            .into_unoptimized_plan();
        tracing::info!(
            "collection `{}`: {} documents checked, {} added, {} changed, {} deleted; {} chunks made, {} embedded",
            self.asset.name,
            counts.documents,
            counts.added,
            counts.changed,
            counts.deleted,
            counts.chunked,
            counts.embedded
        );
        let mut outcome = delta::write(job, &ctx, plan).await;
        outcome.collection = Some(counts);
        Ok(outcome)
    }

    /// The documents as they are now.
    async fn documents(&self, ctx: &SessionContext) -> Result<Vec<Document>, Failure> {
        let word = self.def.format.as_deref().and_then(Format::from_word);
        match &self.def.documents {
            Documents::Files { .. } => {
                let files = self.files().await?;
                let def = self.def.clone();
                tokio::task::spawn_blocking(move || {
                    files
                        .iter()
                        .map(|file| {
                            let bytes = std::fs::read(file).map_err(|e| {
                                Failure::from(format!(
                                    "{}: cannot read the document: {e}",
                                    file.display()
                                ))
                            })?;
                            let text = match String::from_utf8(bytes) {
                                Ok(text) => text,
                                Err(e) => {
                                    tracing::warn!(
                                        "{}: not UTF-8 at byte {}; invalid bytes read as U+FFFD",
                                        file.display(),
                                        e.utf8_error().valid_up_to()
                                    );
                                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                                }
                            };
                            Ok(Document {
                                id: def.document_id(file),
                                text,
                                format: word.unwrap_or_else(|| Format::of_path(file)),
                            })
                        })
                        .collect()
                })
                .await
                .map_err(Failure::task)?
            }
            Documents::Rows { from, id, text, .. } => {
                let sql = format!(
                    "SELECT CAST(\"{id}\" AS VARCHAR) AS id, CAST(\"{text}\" AS VARCHAR) AS text FROM \"{from}\""
                );
                let batches = ctx
                    .sql(&sql)
                    .await
                    .map_err(|e| {
                        Failure::from(format!(
                            "collection `{}`: reading `{from}`: {e}",
                            self.asset.name
                        ))
                    })?
                    .collect()
                    .await
                    .map_err(|e| {
                        Failure::from(format!(
                            "collection `{}`: reading `{from}`: {e}",
                            self.asset.name
                        ))
                    })?;
                let mut docs = vec![];
                let mut seen = BTreeSet::new();
                let mut row = 0usize;
                for batch in &batches {
                    let ids = utf8(batch.column(0)).map_err(|e| Failure::of(&e))?;
                    let texts = utf8(batch.column(1)).map_err(|e| Failure::of(&e))?;
                    for i in 0..batch.num_rows() {
                        row += 1;
                        if ids.is_null(i) {
                            return Err(Failure::from(format!(
                                "collection `{}`: row {row} of `{from}` has no `{id}`\n  help: every document needs an id; filter such rows out in `{from}`",
                                self.asset.name
                            )));
                        }
                        let doc_id = ids.value(i).to_string();
                        if !seen.insert(doc_id.clone()) {
                            return Err(Failure::from(format!(
                                "collection `{}`: `{from}`.`{id}` = {doc_id:?} names two documents (row {row} and an earlier one)\n  help: make `{id}` unique in `{from}`",
                                self.asset.name
                            )));
                        }
                        docs.push(Document {
                            id: doc_id,
                            text: if texts.is_null(i) {
                                String::new()
                            } else {
                                texts.value(i).to_string()
                            },
                            format: word.unwrap_or(Format::Text),
                        });
                    }
                }
                Ok(docs)
            }
        }
    }
}

/// A string column as `Utf8`, whichever string type the reader gave.
pub(crate) fn utf8(
    column: &ArrayRef,
) -> Result<datafusion::arrow::array::StringArray, datafusion::arrow::error::ArrowError> {
    let cast = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

/// Each document's content hash in the published version.
async fn document_hashes(ctx: &SessionContext) -> Result<BTreeMap<String, String>, Failure> {
    let batches = ctx
        .sql("SELECT DISTINCT document_id, document_hash FROM previous")
        .await
        .map_err(|e| Failure::from(e.to_string()))?
        .collect()
        .await
        .map_err(|e| Failure::from(e.to_string()))?;
    let mut out = BTreeMap::new();
    for batch in &batches {
        let ids = utf8(batch.column(0)).map_err(|e| Failure::of(&e))?;
        let hashes = utf8(batch.column(1)).map_err(|e| Failure::of(&e))?;
        for i in 0..batch.num_rows() {
            out.insert(ids.value(i).to_string(), hashes.value(i).to_string());
        }
    }
    Ok(out)
}

fn ids_batch(ids: &BTreeSet<String>) -> Result<RecordBatch, Failure> {
    let mut b = StringBuilder::new();
    for id in ids {
        b.append_value(id);
    }
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "document_id",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(b.finish()) as ArrayRef],
    )
    .map_err(|e| Failure::from(e.to_string()))
}

/// Parses and chunks `docs` (with their content hashes) into the chunk
/// table's rows (without embeddings), how many chunks each document made, and
/// each chunk's input to the embedding model (when `embedded`).
fn chunk_documents(
    docs: &[(Document, String)],
    options: &ChunkOptions,
    embedded: bool,
) -> Result<(RecordBatch, Vec<usize>, Vec<String>), Failure> {
    let tokens = if docs.is_empty() {
        None
    } else {
        Some(sluice_retrieve::model::default_tokenizer().map_err(|e| Failure::of(&e))?)
    };
    let mut document_id = StringBuilder::new();
    let mut chunk_index = Int32Builder::new();
    let mut chunk_id = StringBuilder::new();
    let mut title = StringBuilder::new();
    let mut heading_path = StringBuilder::new();
    let mut text = StringBuilder::new();
    let mut token_counts = Int32Builder::new();
    let mut document_hash = StringBuilder::new();
    let mut chunk_hash = StringBuilder::new();
    let mut made = vec![0; docs.len()];
    let mut inputs = vec![];
    if let Some(tokens) = &tokens {
        for ((doc, hash), made) in docs.iter().zip(made.iter_mut()) {
            let nodes = sluice_retrieve::parse(doc.format, &doc.text);
            let doc_title = nodes.iter().find_map(|n| match n {
                sluice_retrieve::Node::Heading { title, .. } => Some(title.clone()),
                sluice_retrieve::Node::Block(_) => None,
            });
            for (i, chunk) in sluice_retrieve::chunk(&nodes, tokens, options)
                .into_iter()
                .enumerate()
            {
                document_id.append_value(&doc.id);
                chunk_index.append_value(i32::try_from(i).unwrap_or(i32::MAX));
                chunk_id.append_value(format!("{}#{i}", doc.id));
                title.append_option(doc_title.as_deref());
                heading_path.append_value(chunk.heading_path());
                token_counts.append_value(i32::try_from(chunk.tokens).unwrap_or(i32::MAX));
                document_hash.append_value(hash);
                let input = chunk.embedding_input();
                chunk_hash.append_value(content_hash(&input));
                if embedded {
                    inputs.push(input);
                }
                text.append_value(&chunk.text);
                *made += 1;
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(document_id.finish()),
        Arc::new(chunk_index.finish()),
        Arc::new(chunk_id.finish()),
        Arc::new(title.finish()),
        Arc::new(heading_path.finish()),
        Arc::new(text.finish()),
        Arc::new(token_counts.finish()),
        Arc::new(document_hash.finish()),
        Arc::new(chunk_hash.finish()),
    ];
    let batch = RecordBatch::try_new(chunk_schema(false), columns)
        .map_err(|e| Failure::from(e.to_string()))?;
    Ok((batch, made, inputs))
}
