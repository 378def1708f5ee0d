//! framecast: an HTTP video server on GStreamer.

pub mod admission;
pub mod auth;
pub mod catalog;
pub mod client_text;
pub mod config;
pub mod conn;
pub mod explain;
pub mod http;
pub mod import;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod request;
pub mod serve;
pub mod storage;
