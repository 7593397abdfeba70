//! Media parsing: fMP4 (`mp4`), MPEG-TS (`ts`), H.264 SPS (`h264`) and the
//! ffmpeg decode (`decode`).

pub mod decode;
pub mod h264;
pub mod mp4;
pub mod ts;

#[doc(hidden)]
pub mod testkit;
