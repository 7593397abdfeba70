//! Per-stream ingest facts from nginx-rtmp's statistics page (`rtmp_stat
//! all`, XML): the incoming bitrate, the published video's size and frame
//! rate, how long it has been published, and its viewers over RTMP. Read
//! when `/metrics` is scraped, so it costs nothing otherwise.

use std::time::Duration;

use quick_xml::events::Event;
use quick_xml::Reader;

/// What nginx-rtmp says about one stream of one application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestFacts {
    pub app: String,
    pub stream: String,
    /// A publisher is connected.
    pub publishing: bool,
    /// Since the stream started, in seconds.
    pub uptime_secs: f64,
    /// Incoming bits per second (all tracks), and per track.
    pub bw_in: f64,
    pub bw_video: f64,
    pub bw_audio: f64,
    pub width: f64,
    pub height: f64,
    pub fps: f64,
    /// RTMP clients of the stream (the publisher included).
    pub clients: f64,
}

/// Longest statistics page read (a few hundred streams fit easily).
const MAX_STAT_BYTES: usize = 4 * 1024 * 1024;

/// Fetches and parses the statistics page at `url`.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<IngestFacts>, String> {
    let resp = client
        .get(url)
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .map_err(|e| format!("rtmp stat {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("rtmp stat {url}: HTTP {}", resp.status()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("rtmp stat {url}: {e}"))?;
    if body.len() > MAX_STAT_BYTES {
        return Err(format!(
            "rtmp stat {url}: larger than {MAX_STAT_BYTES} bytes"
        ));
    }
    parse(&String::from_utf8_lossy(&body))
}

/// Parses nginx-rtmp's statistics XML into one entry per stream.
pub fn parse(xml: &str) -> Result<Vec<IngestFacts>, String> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut app = String::new();
    let mut cur: Option<IngestFacts> = None;
    let mut out = Vec::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("rtmp stat XML: {e}"))?
        {
            Event::Start(e) => {
                let name = e.name().as_ref().to_string();
                if name == "stream" && path.last().is_some_and(|p| p == "live") {
                    cur = Some(IngestFacts {
                        app: app.clone(),
                        ..IngestFacts::default()
                    });
                }
                path.push(name);
            }
            Event::Empty(e) if e.name().as_ref() == "publishing" => {
                if let Some(c) = cur.as_mut() {
                    c.publishing = true;
                }
            }
            Event::End(e) => {
                if e.name().as_ref() == "stream" {
                    if let Some(c) = cur.take().filter(|c| !c.stream.is_empty()) {
                        out.push(c);
                    }
                }
                path.pop();
            }
            Event::Text(t) => {
                // Numbers and stream names: nothing nginx-rtmp escapes.
                let text = t.into_inner();
                let text = text.trim();
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                match (p.as_slice(), cur.as_mut()) {
                    ([.., "application", "name"], _) => app = text.to_string(),
                    ([.., "stream", "name"], Some(c)) => c.stream = text.to_string(),
                    ([.., "stream", field], Some(c)) => {
                        let v = text.parse::<f64>().unwrap_or(0.0);
                        match *field {
                            "time" => c.uptime_secs = v / 1000.0,
                            "bw_in" => c.bw_in = v,
                            "bw_video" => c.bw_video = v,
                            "bw_audio" => c.bw_audio = v,
                            "nclients" => c.clients = v,
                            _ => {}
                        }
                    }
                    ([.., "meta", "video", field], Some(c)) => {
                        let v = text.parse::<f64>().unwrap_or(0.0);
                        match *field {
                            "width" => c.width = v,
                            "height" => c.height = v,
                            "frame_rate" => c.fps = v,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape nginx-rtmp 1.2.2 writes (trimmed).
    const STAT: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<rtmp><nginx_version>1.22.1</nginx_version><uptime>60</uptime>
<server><application><name>stream</name><live><nclients>0</nclients></live></application>
<application><name>hls</name><live>
<stream><name>golive</name><time>12500</time><bw_in>812344</bw_in><bytes_in>1234</bytes_in>
<bw_out>0</bw_out><bytes_out>0</bytes_out><bw_audio>64000</bw_audio><bw_video>748344</bw_video>
<client><id>3</id><address>127.0.0.1</address><time>12500</time><flashver>FMLE/3.0</flashver>
<dropped>0</dropped><avsync>0</avsync><timestamp>12000</timestamp><publishing/><active/></client>
<meta><video><width>640</width><height>360</height><frame_rate>29.97</frame_rate><codec>H264</codec>
<profile>High</profile><compat>0</compat><level>3.0</level></video>
<audio><codec>AAC</codec><profile>LC</profile><channels>2</channels><sample_rate>44100</sample_rate></audio></meta>
<nclients>1</nclients><publishing/><active/></stream>
<stream><name>idle</name><time>100</time><bw_in>0</bw_in><nclients>0</nclients></stream>
<nclients>1</nclients></live></application></server></rtmp>"#;

    #[test]
    fn reads_every_stream_of_every_application() {
        let facts = parse(STAT).unwrap();
        assert_eq!(facts.len(), 2);
        let g = &facts[0];
        assert_eq!((g.app.as_str(), g.stream.as_str()), ("hls", "golive"));
        assert!(g.publishing);
        assert_eq!(g.uptime_secs, 12.5);
        assert_eq!(
            (g.bw_in, g.bw_video, g.bw_audio),
            (812344.0, 748344.0, 64000.0)
        );
        assert_eq!((g.width, g.height, g.fps), (640.0, 360.0, 29.97));
        assert_eq!(g.clients, 1.0);
        assert!(!facts[1].publishing);
        assert_eq!(facts[1].fps, 0.0);
    }

    #[test]
    fn garbage_is_an_error_or_nothing_never_a_panic() {
        assert!(parse("<rtmp><server><application>").unwrap().is_empty());
        assert!(parse("<rtmp></server>").is_err());
        assert!(parse("").unwrap().is_empty());
        assert!(parse("<rtmp><server><application><live><stream><name>x</name><bw_in>abc</bw_in></stream></live></application></server></rtmp>")
            .unwrap()[0]
            .bw_in
            .eq(&0.0));
    }
}
