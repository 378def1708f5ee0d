//! framecast: an HTTP video server on GStreamer.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod detections;
pub mod http;
pub mod import;
pub mod media;
pub mod serve;
