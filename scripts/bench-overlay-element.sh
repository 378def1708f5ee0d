#!/bin/sh
# detectionoverlay alone, through gstreamer-check's Harness, in release mode: its cost per
# 720p frame with ten labelled boxes (against mode=none), and whether its start and
# throughput grow with the catalog (3,000 against 300,000 detections). Figures only, no
# pass/fail: timings on a shared machine are for reading, not for asserting (the tests in
# plugin/tests/overlay.rs check what is drawn).
set -eu
cd "$(dirname "$0")/.."
exec cargo test --release -p gst-plugin-framecast --test overlay -- --ignored --nocapture \
    --test-threads 1 start_and_throughput_do_not_grow_with_the_catalog cost_of_ten_labelled_boxes_at_720p
