//! Feature views: per entity and event time, what a model would have known then.
//! A built or kept version is also written to the online store, newest event
//! per entity (an up-to-date view catches the online store up after a crash).

use async_trait::async_trait;
use chrono::Utc;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_core::AssetStatus;
use sluice_project::{AsOf, Asset, Diagnostic, FeatureBody, FeatureDef, Project};

use super::{Job, Kind, Published, arrow_schema, delta};
use crate::Workspace;
use crate::online::OnlineKey;
use crate::outcome::AssetOutcome;
use crate::pins::register_inputs;
use sluice_transform::Known;

/// `[features.NAME]`.
pub(crate) struct Features<'a> {
    pub asset: &'a Asset,
    pub def: &'a FeatureDef,
}

impl Features<'_> {
    fn key(&self) -> OnlineKey {
        OnlineKey::of(self.def)
    }

    /// What the pinned version of a declared view's source tells from its
    /// files (on `cores` tasks), instead of two scans of its rows: its newest
    /// event where the view is as of it, and the categories of the pivots that
    /// do not list theirs. What the files cannot answer is left to planning's
    /// queries.
    async fn known(&self, job: &Job<'_>, cores: usize) -> Known {
        let FeatureBody::Declared(d) = &self.def.body else {
            return Known::default();
        };
        let source = d.source.as_str();
        let Some(version) = job.pins.get(source) else {
            return Known::default();
        };
        let at = sluice_store::AsOf::Version(*version);
        let store = &job.ws.store;
        let newest = async {
            if d.as_of == AsOf::Newest {
                store
                    .newest_from_footers(source, at, &self.def.timestamp)
                    .await
            } else {
                None
            }
        };
        let categories = futures::future::join_all(self.def.discovery_queries().into_iter().map(
            |(i, _)| async move {
                let found = store
                    .distinct_text_from_files(source, at, &d.pivots[i].column, cores)
                    .await;
                found.map(|found| (i, found))
            },
        ));
        let (newest, categories) = futures::future::join(newest, categories).await;
        Known {
            newest,
            categories: categories.into_iter().flatten().collect(),
        }
    }
}

#[async_trait]
impl Kind for Features<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    /// A view as of `now` moves with the clock: it is out of date once its
    /// `refresh` has passed since it was built (every run, by default).
    fn outdated(&self, published: &Published) -> Option<String> {
        let FeatureBody::Declared(d) = &self.def.body else {
            return None;
        };
        if d.as_of != AsOf::Now {
            return None;
        }
        let refresh = self.def.refresh.unwrap_or_default();
        if refresh.is_zero() {
            return Some("it is computed as of `now`, which every run moves".to_string());
        }
        let built = published.committed_at?;
        let age = (Utc::now() - built).to_std().unwrap_or_default();
        (age >= refresh).then(|| {
            format!(
                "it is computed as of `now`, and its `refresh` ({}) has passed since it was built",
                humantime::format_duration(refresh)
            )
        })
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        let ctx = sluice_transform::session();
        if let Err(e) = register_inputs(job.ws, &ctx, job.pins).await {
            return job.failed(e.to_string());
        }
        let now = Utc::now().timestamp_micros();
        let known = self
            .known(job, ctx.state().config().target_partitions())
            .await;
        let built =
            match sluice_transform::plan_features(&ctx, self.asset, self.def, now, &known).await {
                Ok(plan) => delta::write(job, &ctx, plan).await,
                Err(d) => return job.failed(d.to_string()),
            };
        if built.status != AssetStatus::Built {
            return built;
        }
        crate::online::publish(job.ws, self.asset, &self.key(), built, job.run_id).await
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        let done = delta::with_quarantined(job, job.up_to_date()).await;
        crate::online::publish(job.ws, self.asset, &self.key(), done, job.run_id).await
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let now = Utc::now().timestamp_micros();
        sluice_transform::plan_features(ctx, self.asset, self.def, now, &Known::default())
            .await
            .map_err(sluice_transform::Error::into_diagnostic)
            .map(|plan| Some(arrow_schema(&plan)))
    }
}
