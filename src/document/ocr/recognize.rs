//! PP-OCRv5 text-line recognition (CTC), per `models/MODELS.md`: the crop resized to height 48
//! keeping its aspect, BGR scaled to [−1, 1], padded on the right to at least 96 (PaddleOCR pads
//! to 320; on the generated set 96 reads the same and a short line costs less); greedy CTC
//! decoding (argmax per step, repeats merged, blanks dropped), optionally restricted to the MRZ
//! alphabet `0–9 A–Z <` — unrestricted decoding puts spaces into MRZ lines and misreads `<<`.
//! Restricting by dropping other classes lets a near miss win (an `I` the model spread over `l`,
//! `|` and `Ｉ` came out as `H`), so look-alike classes are folded into the MRZ character first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use image::RgbImage;

use crate::vision::frame;
use crate::vision::runtime::{Model, Tensor};
use crate::vision::{Result, VisionError};

/// Height of the recogniser's input.
pub const INPUT_HEIGHT: u32 = 48;
/// Narrowest input; shorter lines are padded.
pub const MIN_WIDTH: u32 = 96;
/// Widest input accepted (a 44-character MRZ line is about 1 650 px at height 48).
pub const MAX_WIDTH: u32 = 3200;

/// The crop's width once scaled to the input height (aspect kept).
fn input_width(line: &RgbImage) -> u32 {
    let (w, h) = line.dimensions();
    ((INPUT_HEIGHT as f32 * w as f32 / h.max(1) as f32).ceil() as u32).clamp(1, MAX_WIDTH)
}

/// Which characters decoding may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// Every class of the dictionary.
    Full,
    /// `0–9`, `A–Z` and `<` only.
    Mrz,
}

/// A recognised line.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognized {
    /// The text.
    pub text: String,
    /// Mean probability of the kept steps, in [0, 1].
    pub confidence: f32,
}

/// The recogniser with its dictionary.
#[derive(Clone)]
pub struct TextRecognizer {
    model: Arc<dyn Model>,
    keys: Arc<Vec<String>>,
    /// For MRZ decoding: (dictionary class, MRZ slot) pairs; slot 0 is the blank, slot k ≥ 1 is
    /// `MRZ_CHARS[k − 1]`. Look-alike classes (lower case, full-width, accented letters, `|`,
    /// `«`) pour their probability into the slot of the character they resemble.
    mrz_map: Arc<Vec<(usize, usize)>>,
}

/// The MRZ alphabet in slot order.
const MRZ_CHARS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<";

/// The MRZ character a dictionary entry can stand for, if any.
fn mrz_fold(entry: &str) -> Option<char> {
    let mut chars = entry.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    let folded = match c {
        '0'..='9' | 'A'..='Z' | '<' => c,
        // A lower-case l is drawn like an I, not like an L.
        'l' | '|' | 'ı' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'ì' | 'í' | 'î' | 'ï' | 'Ⅰ' | '丨' => {
            'I'
        }
        'a'..='z' => c.to_ascii_uppercase(),
        // Full-width forms.
        '\u{FF10}'..='\u{FF19}' => char::from(b'0' + (c as u32 - 0xFF10) as u8),
        '\u{FF21}'..='\u{FF3A}' => char::from(b'A' + (c as u32 - 0xFF21) as u8),
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'A',
        'È' | 'É' | 'Ê' | 'Ë' | 'è' | 'é' | 'ê' | 'ë' => 'E',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'O',
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'ù' | 'ú' | 'û' | 'ü' => 'U',
        'Ñ' | 'ñ' => 'N',
        'Ç' | 'ç' => 'C',
        '«' | '‹' | '＜' => '<',
        _ => return None,
    };
    Some(folded)
}

impl TextRecognizer {
    /// Wraps the model and the dictionary text (one class per `\n`-terminated line; line 0 is
    /// the CTC blank).
    pub fn new(model: Arc<dyn Model>, keys_text: &str) -> Result<Self> {
        // Full-width Latin letters and digits (U+FF01–FF5E) are the model's confusion on Latin
        // print, not something a Latin document prints: written as their ASCII forms.
        let mut keys: Vec<String> = keys_text
            .split('\n')
            .map(|k| {
                k.chars()
                    .map(|c| match u32::from(c) {
                        0xFF01..=0xFF5E => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
                        _ => c,
                    })
                    .collect()
            })
            .collect();
        if keys.last().is_some_and(String::is_empty) {
            keys.pop();
        }
        if keys.len() < 2 || keys[0] != "blank" {
            return Err(VisionError::Model(
                "recognizer keys: line 0 must be `blank`".into(),
            ));
        }
        let mrz_map = std::iter::once((0, 0))
            .chain(keys.iter().enumerate().skip(1).filter_map(|(i, k)| {
                let c = mrz_fold(k)?;
                MRZ_CHARS.find(c).map(|slot| (i, slot + 1))
            }))
            .collect();
        Ok(TextRecognizer {
            model,
            keys: Arc::new(keys),
            mrz_map: Arc::new(mrz_map),
        })
    }

    /// Number of dictionary classes that feed the MRZ alphabet (blank included).
    pub fn mrz_class_count(&self) -> usize {
        self.mrz_map.len()
    }

    /// Reads one upright text line.
    pub fn recognize(&self, line: &RgbImage, alphabet: Alphabet) -> Result<Recognized> {
        Ok(self.decode(&self.probabilities(line)?, alphabet))
    }

    /// Reads each line once and decodes it both ways: full dictionary, then MRZ alphabet.
    /// One line at a time keeps a core idle for much of each run, so two workers take lines
    /// widest first from a shared queue (25 % faster on 2 cores; batching lines into one run was
    /// not faster with rten).
    pub fn recognize_all(&self, lines: &[RgbImage]) -> Result<Vec<(Recognized, Recognized)>> {
        let mut order: Vec<usize> = (0..lines.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(input_width(&lines[i])));
        let next = AtomicUsize::new(0);
        let worker = || -> Result<Vec<(usize, (Recognized, Recognized))>> {
            let mut done = Vec::new();
            while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                let probs = self.probabilities(&lines[i])?;
                let both = (
                    self.decode(&probs, Alphabet::Full),
                    self.decode(&probs, Alphabet::Mrz),
                );
                done.push((i, both));
            }
            Ok(done)
        };
        if !self.model.concurrent_runs() {
            // Runs take turns (ONNX Runtime, every intra-op thread per run): a second worker
            // would only wait, and its spinning competes with the run.
            let mut out = worker()?;
            out.sort_by_key(|(i, _)| *i);
            return Ok(out.into_iter().map(|(_, pair)| pair).collect());
        }
        let results = std::thread::scope(|scope| {
            let helper = scope.spawn(worker);
            let mine = worker();
            let theirs = helper
                .join()
                .unwrap_or_else(|_| Err(VisionError::Model("recognizer worker panicked".into())));
            [mine, theirs]
        });
        let mut out = vec![None; lines.len()];
        for (i, pair) in results
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
        {
            out[i] = Some(pair);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The model's per-step class probabilities for one line.
    fn probabilities(&self, line: &RgbImage) -> Result<Vec<f32>> {
        if line.width() == 0 || line.height() == 0 {
            return Err(VisionError::InvalidImage("empty text crop".into()));
        }
        let rw = input_width(line);
        let resized = frame::resize(line, rw, INPUT_HEIGHT);
        let width = rw.max(MIN_WIDTH) as usize;
        let plane = width * INPUT_HEIGHT as usize;
        let mut data = vec![0.0f32; 3 * plane];
        for (x, y, p) in resized.enumerate_pixels() {
            let i = y as usize * width + x as usize;
            for (c, &v) in [p[2], p[1], p[0]].iter().enumerate() {
                data[c * plane + i] = (f32::from(v) / 255.0 - 0.5) / 0.5;
            }
        }
        let input = Tensor::new(vec![1, 3, INPUT_HEIGHT as usize, width], data)?;
        let out = self.model.run(input, &["fetch_name_0"])?;
        let t = out
            .into_iter()
            .next()
            .ok_or_else(|| VisionError::Model("recognizer: no output".into()))?;
        let classes = *t.shape.last().unwrap_or(&0);
        if classes != self.keys.len() || t.data.len() % classes != 0 {
            return Err(VisionError::Model(format!(
                "recognizer: {classes} classes, dictionary has {}",
                self.keys.len()
            )));
        }
        Ok(t.data)
    }

    fn decode(&self, probs: &[f32], alphabet: Alphabet) -> Recognized {
        let classes = self.keys.len();
        let mut text = String::new();
        let (mut sum, mut kept) = (0.0f32, 0usize);
        let mut previous = usize::MAX;
        let mut slots = [0.0f32; MRZ_CHARS.len() + 1];
        for step in probs.chunks_exact(classes) {
            let (best, p) = match alphabet {
                Alphabet::Full => argmax(step.iter().copied().enumerate()),
                Alphabet::Mrz => {
                    slots.fill(0.0);
                    for &(class, slot) in self.mrz_map.iter() {
                        slots[slot] += step[class];
                    }
                    argmax(slots.iter().copied().enumerate())
                }
            };
            if best != 0 && best != previous {
                match alphabet {
                    Alphabet::Full => text.push_str(&self.keys[best]),
                    Alphabet::Mrz => text.extend(MRZ_CHARS.chars().nth(best - 1)),
                }
                sum += p;
                kept += 1;
            }
            previous = best;
        }
        Recognized {
            text,
            confidence: if kept == 0 { 0.0 } else { sum / kept as f32 },
        }
    }
}

fn argmax(it: impl Iterator<Item = (usize, f32)>) -> (usize, f32) {
    it.fold(
        (0, f32::MIN),
        |best, (k, p)| if p > best.1 { (k, p) } else { best },
    )
}
