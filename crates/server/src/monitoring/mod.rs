//! Monitoring a project from outside: the Prometheus alert rules
//! (`rules.rs`) and the Grafana dashboard (`grafana.rs`) that `sluice
//! monitoring` writes. Both query only the metric names `crate::metrics`
//! exposes, and take their thresholds from the project itself.

mod grafana;
mod rules;

#[cfg(test)]
pub(crate) mod tests;

pub use grafana::grafana_dashboard;
pub use rules::alert_rules;
