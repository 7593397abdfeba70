//! End-to-end tests live in `tests/`: they start the whole platform with
//! `scripts/up.sh` on free ports, publish with ffmpeg and play through the
//! edge only.
