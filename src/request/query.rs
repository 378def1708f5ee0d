//! Query parameters: parsed once into typed values, each failure a 400 that says what is
//! valid.

use std::collections::HashMap;

use super::PlanError;
use crate::client_text::quote;

/// The raw query, last value winning for repeated keys.
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn parse(query: &str) -> Self {
        QueryParams(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The value as given, or `None` when absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An integer in `range`, or `None` when absent. `what` completes "must be ...".
    pub fn integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
        what: &str,
    ) -> Result<Option<i64>, PlanError> {
        let Some(given) = self.0.get(name) else {
            return Ok(None);
        };
        match given.trim().parse::<i64>() {
            Ok(value) if range.contains(&value) => Ok(Some(value)),
            Ok(_) | Err(_) => Err(PlanError::bad_parameter(format!(
                "{name}={} is not valid: {name} must be {what}",
                quote(given)
            ))),
        }
    }

    /// A finite decimal number, or `None` when absent. `what` completes "must be ...";
    /// `valid` says which finite values are.
    pub fn number(
        &self,
        name: &str,
        valid: impl Fn(f64) -> bool,
        what: &str,
    ) -> Result<Option<f64>, PlanError> {
        let Some(given) = self.0.get(name) else {
            return Ok(None);
        };
        match given.trim().parse::<f64>() {
            Ok(value) if value.is_finite() && valid(value) => Ok(Some(value)),
            Ok(_) | Err(_) => Err(PlanError::bad_parameter(format!(
                "{name}={} is not valid: {name} must be {what}",
                quote(given)
            ))),
        }
    }

    /// One of `choices` (`(spelling, value)`), or `default` when absent.
    pub fn choice<T: Copy>(
        &self,
        name: &str,
        choices: &[(&str, T)],
        default: T,
    ) -> Result<T, PlanError> {
        let Some(given) = self.0.get(name) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|(spelling, _)| spelling == given)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let valid: Vec<&str> = choices.iter().map(|(s, _)| *s).collect();
                PlanError::bad_parameter(format!(
                    "{name}={} is not valid; use one of: {}",
                    quote(given),
                    valid.join(", ")
                ))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audio {
    On,
    Off,
}

/// The container of a re-encoded stream (`format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// MPEG-TS (the default): what players and tools take from a pipe.
    Ts,
    /// Fragmented MP4: what a browser's `<video src>` plays while it downloads.
    Mp4,
}

impl Container {
    pub fn content_type(self) -> &'static str {
        match self {
            Container::Ts => "video/mp2t",
            Container::Mp4 => "video/mp4",
        }
    }

    /// File name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Mp4 => "mp4",
        }
    }
}

/// `mode`, `audio` and `format`, common to every video endpoint.
#[derive(Debug, Clone, Copy)]
pub struct StreamParams {
    pub mode: Mode,
    pub audio: Audio,
    pub container: Container,
}

impl StreamParams {
    pub fn parse(query: &QueryParams) -> Result<Self, PlanError> {
        Ok(StreamParams {
            mode: query.choice(
                "mode",
                &[("normal", Mode::Normal), ("debug", Mode::Debug)],
                Mode::Normal,
            )?,
            audio: query.choice(
                "audio",
                &[("on", Audio::On), ("off", Audio::Off)],
                Audio::On,
            )?,
            container: query.choice(
                "format",
                &[("ts", Container::Ts), ("mp4", Container::Mp4)],
                Container::Ts,
            )?,
        })
    }
}
