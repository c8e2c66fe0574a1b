//! Passive liveness on real photos and on synthetic attacks built from them.

use super::evaluate;
use super::synthetic::{self, AttackKind, Rng};
use super::*;
use crate::vision::testutil;

fn analyzer() -> PassiveAnalyzer {
    let models = testutil::models();
    PassiveAnalyzer::new(models, FaceAnalyzer::new(models))
}

const SOURCES: [&str; 4] = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"];

#[test]
#[ignore]
fn calibration_dump() {
    let a = analyzer();
    let t = LivenessThresholds::default();
    let mut rng = Rng::new(42);
    let show = |label: &str, img: &RgbImage| match a.analyze(img, &t) {
        Ok(r) => {
            let s = &r.verdict.signals;
            eprintln!(
                "{label:24} live={} type={:?} p_real={:.3} luma={:.2}@{:.2}/{:.0} chroma={:.2}@{:.2}/{:.0} frame={:.2} {:?} border={:.0}",
                r.verdict.is_live, r.verdict.spoof_type, s.model.p_real,
                s.periodicity.luma.prominence, s.periodicity.luma.frequency, s.periodicity.luma.angle_deg,
                s.periodicity.chroma.prominence, s.periodicity.chroma.frequency, s.periodicity.chroma.angle_deg,
                s.frame.score, s.frame.coverage, s.frame.border_luma
            )
        }
        Err(e) => eprintln!("{label:24} error {e}"),
    };
    for name in SOURCES {
        let img = testutil::face(name);
        show(name, &img);
        for i in 0..3 {
            show(
                &format!("{name} bona{i}"),
                &synthetic::bona_fide(&img, &mut rng),
            );
        }
        for kind in [AttackKind::Screen, AttackKind::Print, AttackKind::Framed] {
            for i in 0..3 {
                let att = synthetic::attack(&img, kind, &mut rng);
                if i == 0 {
                    let _ = std::fs::create_dir_all("/tmp/liv");
                    let _ = att.save(format!("/tmp/liv/{name}-{kind:?}.png"));
                }
                show(&format!("{name} {kind:?}{i}"), &att);
            }
        }
    }
}

#[test]
fn real_selfies_are_live() {
    let a = analyzer();
    for name in SOURCES {
        let r = a
            .analyze(&testutil::face(name), &LivenessThresholds::default())
            .unwrap();
        assert!(r.verdict.is_live, "{name}: {:?}", r.verdict);
        assert_eq!(r.verdict.spoof_type, SpoofType::None);
        assert!(r.verdict.confidence > 0.5, "{name}: {:?}", r.verdict);
    }
}

/// The acceptance measurement: ≥ 200 synthetic attacks and ≥ 50 synthetic genuine captures.
#[test]
fn synthetic_attack_set_apcer_and_bpcer() {
    let sources: Vec<RgbImage> = SOURCES.iter().map(|n| testutil::face(n)).collect();
    let e = evaluate::run(
        &analyzer(),
        &sources,
        13,
        17,
        2026,
        &LivenessThresholds::default(),
    );
    eprintln!("{e:#?}");
    let attacks = e.screen.generated + e.print.generated + e.framed.generated;
    assert!(attacks >= 200 && e.bona_fide.generated >= 50);
    assert!(e.apcer <= 0.10, "APCER {:.3}", e.apcer);
    for kind in [&e.screen, &e.print, &e.framed] {
        assert!(kind.judged_live * 10 <= kind.judged(), "{kind:?}");
    }
    assert!(e.bpcer <= 0.05, "BPCER {:.3}", e.bpcer);
}
