//! Models, stage ⑤ of the flow: learners trained in-process on a training set
//! (gradient-boosted trees by forust, logistic regression by argmin's L-BFGS,
//! linear regression by linfa),
//! models imported from ONNX (run by ONNX Runtime), the encoders fitted on the
//! training split only, and the validation metrics.
//!
//! Data comes in as Arrow batches ([`Frame::from_batches`]); a model is one
//! JSON document ([`Model::save`]); everything that scores rows — validation,
//! batch predictions, an online request — calls [`Model::predict`], so they
//! agree to the last bit on the same values.

mod encode;
mod error;
pub mod frame;
mod gbdt;
mod linear;
mod logistic;
pub mod metrics;
mod model;
pub mod onnx;

pub use encode::{ColumnEncoder, Encoder, Matrix, Style};
pub use error::{Error, Result};
pub use frame::{Frame, Kind, Values};
pub use model::{Input, InputSource, MODEL_FORMAT, Model, Split, Trained, train, write_atomically};
pub use onnx::OnnxError;
