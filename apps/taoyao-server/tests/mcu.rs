//! MCU rooms with real WebRTC peers: each member sends an Opus tone and receives one mixed track
//! holding the others' tones and not its own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, eventually, heard};
use serde_json::json;
use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::member::Member;
use taoyao_bench::peer::PeerOptions;
use taoyao_media::mix::tone_energy;

fn tone(hz: u32) -> Arc<TestMedia> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
    Arc::new(
        TestMedia::make(
            &dir,
            &MediaSpec {
                tone_hz: hz,
                ..MediaSpec::default()
            },
        )
        .expect("test media (ffmpeg)"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_hears_the_others_tones_and_not_its_own() {
    let server = TestServer::start().await;
    let tones = [("a", 440u32), ("b", 660), ("c", 880)];
    let mut members = Vec::new();
    for (id, hz) in tones {
        let m = Member::connect(
            &server.url(),
            json!({"clientId": id, "username": "taoyao", "password": "taoyao"}),
            PeerOptions::default(),
        )
        .await
        .unwrap();
        let r = m
            .enter_with(json!({"roomId": "mcu-tones", "architecture": "mcu", "subscribe": "all"}))
            .await
            .unwrap();
        assert_eq!(r["body"]["architecture"], "mcu");
        m.publish(tone(hz), false, true).await.unwrap();
        members.push((m, hz));
    }
    for (m, _) in &members {
        eventually(
            Duration::from_secs(15),
            &format!("{} to receive 2 s of the mix", m.id),
            || {
                m.sub()
                    .received
                    .find("mix", false)
                    .is_some_and(|t| t.packets() > 150)
            },
        )
        .await;
    }
    // One second of what each heard: the others' tones, clearly, and not its own.
    // Thresholds: each other tone above 1e5 and at least 30x the energy at the member's own tone.
    for (m, own_hz) in &members {
        let pcm = heard(m, 50);
        let own = tone_energy(&pcm, f64::from(*own_hz));
        for (o, hz) in members.iter().filter(|(o, _)| o.id != m.id) {
            let e = tone_energy(&pcm, f64::from(*hz));
            eprintln!(
                "{} hears {} ({hz} Hz): {e:.0}; own {own_hz} Hz: {own:.0}",
                m.id, o.id
            );
            assert!(e > 1e5, "{} hears {} too faintly: {e:.0}", m.id, o.id);
            assert!(
                e > own * 30.0,
                "{} hears itself: own {own:.0} vs {} {e:.0}",
                m.id,
                o.id
            );
        }
        // Exactly one audio track: the mix, whatever the room's size.
        let audio_tracks = m
            .sub()
            .received
            .tracks()
            .iter()
            .filter(|t| !t.video)
            .count();
        assert_eq!(audio_tracks, 1);
    }

    // Everyone is told the room's audio levels: all three tones are loud (above -50 dBov) and
    // the active speaker is one of them.
    for (m, _) in &members {
        let note = m
            .note(Duration::from_secs(3), |n| {
                n["header"]["signal"] == "media::audio::volume"
                    && n["body"]["volumes"].as_array().is_some_and(|v| {
                        v.len() == 3 && v.iter().all(|e| e["volume"].as_i64().unwrap_or(-127) > -50)
                    })
            })
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{} gets no audio levels: {:?}",
                    m.id,
                    m.notes()
                        .iter()
                        .rfind(|n| n["header"]["signal"] == "media::audio::volume")
                )
            });
        eprintln!("{} is told {}", m.id, note["body"]);
        assert_eq!(note["body"]["roomId"], "mcu-tones");
        let speaker = note["body"]["speaker"].as_str().expect("a speaker");
        assert!(["a", "b", "c"].contains(&speaker), "{note}");
    }

    // A fourth member is heard by the others within a second of starting to send.
    let d = Member::connect(
        &server.url(),
        json!({"clientId": "d", "username": "taoyao", "password": "taoyao"}),
        PeerOptions::default(),
    )
    .await
    .unwrap();
    d.enter_with(json!({"roomId": "mcu-tones", "subscribe": "all"}))
        .await
        .unwrap();
    d.publish(tone(1100), false, true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pcm = heard(&members[0].0, 15);
    let e = tone_energy(&pcm, 1100.0);
    assert!(e > 1e5, "a does not hear d 1 s after d started: {e:.0}");

    for (m, _) in &members {
        m.close_peers().await;
    }
    d.close_peers().await;
    server.stop().await;
}
