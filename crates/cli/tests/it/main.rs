//! End-to-end tests of the `sluice` binary on real data and on broken input.

mod alerts;
mod app_report;
mod bad_input;
mod common;
mod contract;
mod crash;
mod describe;
mod example;
mod exports;
mod external;
mod features;
mod golden;
mod init;
mod model_training;
mod models;
mod monitoring;
mod online_windows;
mod partitions;
mod read_side;
mod rebuilds;
mod schedules;
mod serve;
mod source_layouts;
mod spine_windows;
mod steps;
mod view_positions;
