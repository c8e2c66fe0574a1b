//! APCER / BPCER of the passive checks on a generated set ([`super::synthetic`]), as ISO/IEC
//! 30107-3 defines them: APCER = attacks accepted as live / attacks judged, BPCER = genuine
//! captures rejected / genuine captures judged. Images where no usable face was found are
//! counted apart (failures to acquire), not folded into either rate.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use super::synthetic::{self, AttackKind, Rng};
use super::{LivenessThresholds, PassiveAnalyzer, SpoofType};

/// Long side to which source photos are reduced before generating.
pub const SOURCE_MAX_SIDE: u32 = 1200;

fn shrink(img: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = w.max(h);
    if long <= max_side {
        return img.clone();
    }
    let s = max_side as f32 / long as f32;
    crate::vision::frame::resize(img, (w as f32 * s) as u32, (h as f32 * s) as u32)
}

/// Counts for one class of presentation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClassCounts {
    /// Images generated.
    pub generated: usize,
    /// Images with no usable face (failure to acquire).
    pub not_acquired: usize,
    /// Images judged live.
    pub judged_live: usize,
    /// Attacks whose reported `spoof_type` names their medium (screen or paper).
    pub type_right: usize,
    /// Judged images on which each signal alone crossed its threshold: MiniFASNet, texture,
    /// frame (an ablation: what each contributes).
    pub flagged_by: [usize; 3],
}

impl ClassCounts {
    /// Images that received a verdict.
    pub fn judged(&self) -> usize {
        self.generated - self.not_acquired
    }
}

/// The outcome of an evaluation run.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Genuine captures.
    pub bona_fide: ClassCounts,
    /// Screen replays.
    pub screen: ClassCounts,
    /// Halftone prints.
    pub print: ClassCounts,
    /// Clean photos inside a bezel or paper border.
    pub framed: ClassCounts,
    /// Attacks accepted / attacks judged.
    pub apcer: f64,
    /// Genuine rejected / genuine judged.
    pub bpcer: f64,
    /// Median analysis time per image in ms (detection, anti-spoof, texture, frame, embedding).
    pub median_ms: f64,
}

/// Generates `per_source_bona_fide` genuine and `per_source_attacks` attacks of each kind from
/// every source image with `seed`, and judges them all under `t`.
pub fn run(
    analyzer: &PassiveAnalyzer,
    sources: &[RgbImage],
    per_source_bona_fide: usize,
    per_source_attacks: usize,
    seed: u64,
    t: &LivenessThresholds,
) -> Evaluation {
    let mut rng = Rng::new(seed);
    let mut bona_fide = ClassCounts::default();
    let mut by_kind = [
        ClassCounts::default(),
        ClassCounts::default(),
        ClassCounts::default(),
    ];
    let kinds = [AttackKind::Screen, AttackKind::Print, AttackKind::Framed];
    let mut times = Vec::new();
    let mut judge = |img: &RgbImage, counts: &mut ClassCounts, expected: Option<SpoofType>| {
        counts.generated += 1;
        let started = Instant::now();
        let report = analyzer.analyze(img, t);
        times.push(started.elapsed().as_secs_f64() * 1e3);
        if let Ok(r) = &report {
            let s = &r.verdict.signals;
            let flags = [
                s.model.p_real < t.min_model_real,
                s.texture_score > t.max_texture,
                s.frame_score > t.max_frame,
            ];
            for (n, f) in counts.flagged_by.iter_mut().zip(flags) {
                *n += usize::from(f);
            }
        }
        match report {
            Err(_) => counts.not_acquired += 1,
            Ok(r) if r.verdict.is_live => counts.judged_live += 1,
            Ok(r) => {
                if Some(r.verdict.spoof_type) == expected {
                    counts.type_right += 1;
                }
            }
        }
    };
    for src in sources {
        // Phone-capture sizes; it also keeps generation (halftoning, blurs) quick.
        let src = &shrink(src, SOURCE_MAX_SIDE);
        for _ in 0..per_source_bona_fide {
            judge(&synthetic::bona_fide(src, &mut rng), &mut bona_fide, None);
        }
        for (kind, counts) in kinds.iter().zip(by_kind.iter_mut()) {
            for _ in 0..per_source_attacks {
                let img = synthetic::attack(src, *kind, &mut rng);
                let expected = match kind {
                    AttackKind::Screen => SpoofType::Screen,
                    AttackKind::Print => SpoofType::Paper,
                    // A framed photo is a phone or a print; either name is right.
                    AttackKind::Framed => SpoofType::Unknown,
                };
                judge(&img, counts, Some(expected));
            }
        }
    }
    let [screen, print, mut framed] = by_kind;
    // For framed photos any medium name counts: recount as "not unknown".
    framed.type_right = framed.judged() - framed.judged_live - framed.type_right;
    let attacks_judged = screen.judged() + print.judged() + framed.judged();
    let attacks_live = screen.judged_live + print.judged_live + framed.judged_live;
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    times.sort_by(f64::total_cmp);
    Evaluation {
        apcer: ratio(attacks_live, attacks_judged),
        bpcer: ratio(
            bona_fide.judged() - bona_fide.judged_live,
            bona_fide.judged(),
        ),
        median_ms: times.get(times.len() / 2).copied().unwrap_or(0.0),
        bona_fide,
        screen,
        print,
        framed,
    }
}
