//! Progress bars for transfers: drawn on stderr when it is a terminal,
//! absent when piped or `--quiet`. Never writes to stdout.

use crate::api::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;

/// A transfer bar, or nothing.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(enabled: bool, total: u64, label: &str) -> Bar {
        if !enabled {
            return Bar(None);
        }
        let pb = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "{msg:30!} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta:>4}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        pb.set_style(style);
        pb.set_message(label.to_owned());
        Bar(Some(pb))
    }

    /// The callback the API client calls with bytes done so far.
    pub fn callback(&self) -> Option<Progress> {
        let pb = self.0.clone()?;
        Some(Arc::new(move |done| pb.set_position(done)))
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}
