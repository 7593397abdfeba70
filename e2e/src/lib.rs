//! End-to-end tests live in `tests/`: they start the whole platform with
//! `rtmp-live-up` (what `make up` runs) on free ports, publish with ffmpeg and play through the
//! edge only.
