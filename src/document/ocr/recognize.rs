//! PP-OCRv5 text-line recognition (CTC), per `models/MODELS.md`: the crop resized to height 48
//! keeping its aspect, BGR scaled to [−1, 1], padded on the right to at least 320; greedy CTC
//! decoding (argmax per step, repeats merged, blanks dropped), optionally restricted to the MRZ
//! alphabet `0–9 A–Z <` — unrestricted decoding puts spaces into MRZ lines and misreads `<<`.

use std::sync::Arc;

use image::RgbImage;

use crate::vision::frame;
use crate::vision::runtime::{Model, Tensor};
use crate::vision::{Result, VisionError};

/// Height of the recogniser's input.
pub const INPUT_HEIGHT: u32 = 48;
/// Narrowest input; shorter lines are padded.
pub const MIN_WIDTH: u32 = 320;
/// Widest input accepted (a 44-character MRZ line is about 1 650 px at height 48).
pub const MAX_WIDTH: u32 = 3200;

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
    mrz_classes: Arc<Vec<usize>>,
}

impl TextRecognizer {
    /// Wraps the model and the dictionary text (one class per `\n`-terminated line; line 0 is
    /// the CTC blank).
    pub fn new(model: Arc<dyn Model>, keys_text: &str) -> Result<Self> {
        let mut keys: Vec<String> = keys_text.split('\n').map(str::to_owned).collect();
        if keys.last().is_some_and(String::is_empty) {
            keys.pop();
        }
        if keys.len() < 2 || keys[0] != "blank" {
            return Err(VisionError::Model(
                "recognizer keys: line 0 must be `blank`".into(),
            ));
        }
        let mrz_classes = std::iter::once(0)
            .chain(keys.iter().enumerate().filter_map(|(i, k)| {
                let mut chars = k.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii_digit() || c.is_ascii_uppercase() || c == '<' => {
                        Some(i)
                    }
                    _ => None,
                }
            }))
            .collect();
        Ok(TextRecognizer {
            model,
            keys: Arc::new(keys),
            mrz_classes: Arc::new(mrz_classes),
        })
    }

    /// Number of classes the MRZ alphabet maps to (37 characters + blank when the dictionary is
    /// complete).
    pub fn mrz_class_count(&self) -> usize {
        self.mrz_classes.len()
    }

    /// Reads one upright text line.
    pub fn recognize(&self, line: &RgbImage, alphabet: Alphabet) -> Result<Recognized> {
        let (w, h) = line.dimensions();
        if w == 0 || h == 0 {
            return Err(VisionError::InvalidImage("empty text crop".into()));
        }
        let rw = ((INPUT_HEIGHT as f32 * w as f32 / h as f32).ceil() as u32).clamp(1, MAX_WIDTH);
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
            .first()
            .ok_or_else(|| VisionError::Model("recognizer: no output".into()))?;
        let classes = *t.shape.last().unwrap_or(&0);
        if classes != self.keys.len() || t.data.len() % classes != 0 {
            return Err(VisionError::Model(format!(
                "recognizer: {classes} classes, dictionary has {}",
                self.keys.len()
            )));
        }
        Ok(self.decode(&t.data, classes, alphabet))
    }

    fn decode(&self, probs: &[f32], classes: usize, alphabet: Alphabet) -> Recognized {
        let mut text = String::new();
        let (mut sum, mut kept) = (0.0f32, 0usize);
        let mut previous = usize::MAX;
        for step in probs.chunks_exact(classes) {
            let (best, p) = match alphabet {
                Alphabet::Full => argmax(step.iter().copied().enumerate()),
                Alphabet::Mrz => argmax(self.mrz_classes.iter().map(|&k| (k, step[k]))),
            };
            if best != 0 && best != previous {
                text.push_str(&self.keys[best]);
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
