//! The ONNX runtime boundary: a small [`Model`] trait, its rten implementation, and [`Models`],
//! which loads every face model after checking its sha256.
//!
//! The trait is deliberately narrow (one f32 input in, named f32 outputs back) so that another
//! backend such as `ort` can be added later as an optional feature without touching the
//! pre/post-processing code. Nothing outside this file names rten types.
//!
//! # Threading
//!
//! By default rten runs every model on its own global Rayon pool, sized to the number of physical
//! cores, overridable per process with the `RTEN_NUM_THREADS` environment variable.
//! [`RuntimeOptions::threads`] instead gives the loaded models a dedicated pool of that size,
//! shared by all of them; use it to keep inference from competing with the rest of the process.
//! One inference at a time already uses the whole pool, so running many inferences concurrently
//! adds queueing, not throughput.

use std::path::Path;
use std::sync::Arc;

use rten_tensor::prelude::*;
use sha2::{Digest, Sha256};

use super::{Result, VisionError};

/// A dense row-major f32 tensor, the only value that crosses the runtime boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first (NCHW for images).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values in row-major order.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that the data fills the shape exactly.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor> {
        let len: usize = shape.iter().product();
        if len != data.len() {
            return Err(VisionError::Model(format!(
                "tensor shape {shape:?} needs {len} values, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }
}

/// One loaded inference graph with a single f32 input.
///
/// Every kycd vision model has exactly one input, so the trait does not name it.
pub trait Model: Send + Sync {
    /// Runs the graph on `input` and returns the outputs named in `outputs`, in that order.
    fn run(&self, input: Tensor, outputs: &[&str]) -> Result<Vec<Tensor>>;

    /// Whether two runs at once make progress together (rten: yes, a run leaves cores idle);
    /// `false` when runs take turns, so callers should not split work across threads.
    fn concurrent_runs(&self) -> bool {
        true
    }
}

/// How models are executed.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Size of a dedicated thread pool shared by the loaded models. `None` (the default) uses
    /// rten's global pool: one thread per physical core, or `RTEN_NUM_THREADS`. With ONNX
    /// Runtime, each model's intra-op threads (default: the available cores).
    pub threads: Option<usize>,
    /// The engine.
    pub backend: crate::config::Backend,
    /// `libonnxruntime.so` for [`crate::config::Backend::Ort`].
    pub ort_library: Option<std::path::PathBuf>,
}

impl RuntimeOptions {
    /// The options a [`crate::config::ModelsConfig`] names.
    pub fn from_config(c: &crate::config::ModelsConfig) -> Self {
        RuntimeOptions {
            threads: c.threads,
            backend: c.backend,
            ort_library: c.ort_library.clone(),
        }
    }
}

/// A [`Model`] executed by rten.
pub struct RtenModel {
    model: rten::Model,
    name: &'static str,
    pool: Option<Arc<rten::ThreadPool>>,
}

impl RtenModel {
    fn new(model: rten::Model, name: &'static str, pool: Option<Arc<rten::ThreadPool>>) -> Self {
        RtenModel { model, name, pool }
    }

    fn err(&self, what: impl std::fmt::Display) -> VisionError {
        VisionError::Model(format!("{}: {what}", self.name))
    }
}

impl Model for RtenModel {
    fn run(&self, input: Tensor, outputs: &[&str]) -> Result<Vec<Tensor>> {
        let input_id = *self
            .model
            .input_ids()
            .first()
            .ok_or_else(|| self.err("no input"))?;
        let output_ids = outputs
            .iter()
            .map(|name| self.model.node_id(name).map_err(|e| self.err(e)))
            .collect::<Result<Vec<_>>>()?;
        let value = rten::Value::from_shape(&input.shape, input.data).map_err(|e| self.err(e))?;
        let opts = rten::RunOptions::default().with_thread_pool(self.pool.clone());
        let values = self
            .model
            .run(vec![(input_id, value.into())], &output_ids, Some(opts))
            .map_err(|e| self.err(e))?;
        values
            .into_iter()
            .zip(outputs)
            .map(|(value, name)| {
                let tensor = value
                    .into_tensor::<f32>()
                    .ok_or_else(|| self.err(format!("output {name} is not f32")))?;
                Ok(Tensor {
                    shape: tensor.shape().to_vec(),
                    data: tensor.to_vec(),
                })
            })
            .collect()
    }
}

/// A model file kycd ships, with the digest it must have.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    /// File name inside the models directory.
    pub file: &'static str,
    /// Lower-case hex sha256 of the file.
    pub sha256: &'static str,
}

/// YuNet 2023mar face detector with free input size.
pub const YUNET: ModelFile = ModelFile {
    file: "yunet_2023mar_dynamic.onnx",
    sha256: "41807e586a0fa5082726090adf53aa90f8842fff0beea5ad20d0757cdf732fed",
};
/// SFace 2021dec face recogniser, fp32.
pub const SFACE: ModelFile = ModelFile {
    file: "sface_2021dec_fp32.onnx",
    sha256: "140dd96408484473082d482f5a2165e386b3c3ea26b5911eab540c477eb83cd9",
};
/// MiniFASNetV2 passive anti-spoofing, crop scale 2.7.
pub const MINIFASNET_V2: ModelFile = ModelFile {
    file: "minifasnet_v2_2.7_80x80.onnx",
    sha256: "82cbd4735448881b96776bfa876798edd455d258e34df8f30ed9afac2160fe37",
};
/// MiniFASNetV1SE passive anti-spoofing, crop scale 4.0.
pub const MINIFASNET_V1SE: ModelFile = ModelFile {
    file: "minifasnet_v1se_4.0_80x80.onnx",
    sha256: "afb81acdb26303d46e7df75d9b16da59e786ae267c3ba6db8f1f7f61592ed0c1",
};
/// MediaPipe 468-point face mesh.
pub const FACE_MESH: ModelFile = ModelFile {
    file: "mediapipe_face_landmark.onnx",
    sha256: "210b5cbb57fcd232a4748f516e7779de685df0c77d4e44480282259d6264d00b",
};

/// PP-OCRv5 mobile text detection (DBNet).
pub const OCR_DET: ModelFile = ModelFile {
    file: "ppocrv5_det.onnx",
    sha256: "62f0e79763dfd9bdadae166dd61078e703d9149df891e11a58c48d18595fad6f",
};
/// PP-OCRv5 mobile text recognition (CTC).
pub const OCR_REC: ModelFile = ModelFile {
    file: "ppocrv5_rec.onnx",
    sha256: "22edcdb81193286bd1f2c34069d4dc4296d3ac268fc736b4a83bba3eaae26dbb",
};
/// The recogniser's dictionary (not a model, but checked the same way).
pub const OCR_KEYS: ModelFile = ModelFile {
    file: "ppocr_keys_v5.txt",
    sha256: "4941d35625bf15f7ef89fcbff443893e2fef40e25a7ecde885203994d4a9be25",
};

/// Loads one model: from `dir` when given, else from `embedded`; checksum-verified either way.
pub fn load_single(
    spec: ModelFile,
    dir: Option<&Path>,
    embedded: &'static [u8],
    opts: &RuntimeOptions,
) -> Result<Arc<dyn Model>> {
    let pool = opts
        .threads
        .map(|n| Arc::new(rten::ThreadPool::with_num_threads(n.max(1))));
    let source = match dir {
        Some(d) => Source::Owned(
            std::fs::read(d.join(spec.file))
                .map_err(|e| VisionError::Model(format!("{}: {e}", spec.file)))?,
        ),
        None => Source::Static(embedded),
    };
    load_model(spec, source, opts, &pool)
}

/// Reads a checksum-verified text file (a dictionary): from `dir` when given, else `embedded`.
pub fn load_text(spec: ModelFile, dir: Option<&Path>, embedded: &'static str) -> Result<String> {
    let text = match dir {
        Some(d) => std::fs::read_to_string(d.join(spec.file))
            .map_err(|e| VisionError::Model(format!("{}: {e}", spec.file)))?,
        None => embedded.to_owned(),
    };
    verify(spec, text.as_bytes())?;
    Ok(text)
}

/// Every face model file, in the order [`Models`] loads them.
pub const ALL_MODELS: [ModelFile; 5] = [YUNET, SFACE, MINIFASNET_V2, MINIFASNET_V1SE, FACE_MESH];

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn verify(spec: ModelFile, bytes: &[u8]) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual != spec.sha256 {
        return Err(VisionError::Model(format!(
            "{}: sha256 {actual} does not match the expected {}",
            spec.file, spec.sha256
        )));
    }
    Ok(())
}

/// Where a model's bytes come from: read from disk (owned) or embedded in the binary.
enum Source {
    Owned(Vec<u8>),
    Static(&'static [u8]),
}

fn load_model(
    spec: ModelFile,
    source: Source,
    opts: &RuntimeOptions,
    pool: &Option<Arc<rten::ThreadPool>>,
) -> Result<Arc<dyn Model>> {
    if opts.backend == crate::config::Backend::Ort {
        let bytes = match &source {
            Source::Owned(b) => b.as_slice(),
            Source::Static(b) => b,
        };
        verify(spec, bytes)?;
        return ort_backend::load(spec.file, bytes, opts);
    }
    // Weights packed for the GEMM kernels once at load instead of at every run: a short text
    // line reads in 11 ms instead of 17 (2 cores), for a copy of the conv and matmul weights.
    let mut options = rten::ModelOptions::with_all_ops();
    options.prepack_weights(true);
    let loaded = match source {
        Source::Owned(bytes) => {
            verify(spec, &bytes)?;
            options.load(bytes)
        }
        Source::Static(bytes) => {
            verify(spec, bytes)?;
            options.load_static_slice(bytes)
        }
    };
    let model = loaded.map_err(|e| VisionError::Model(format!("{}: {e}", spec.file)))?;
    Ok(Arc::new(RtenModel::new(model, spec.file, pool.clone())))
}

/// All face models, loaded and verified, ready to share across threads.
#[derive(Clone)]
pub struct Models {
    /// YuNet face detector ([`YUNET`]).
    pub detector: Arc<dyn Model>,
    /// SFace recogniser ([`SFACE`]).
    pub recognizer: Arc<dyn Model>,
    /// MiniFASNetV2 anti-spoofing ([`MINIFASNET_V2`]), for liveness.
    pub antispoof_v2: Arc<dyn Model>,
    /// MiniFASNetV1SE anti-spoofing ([`MINIFASNET_V1SE`]), for liveness.
    pub antispoof_v1se: Arc<dyn Model>,
    /// MediaPipe face mesh ([`FACE_MESH`]), for blink and pose.
    pub face_mesh: Arc<dyn Model>,
}

impl Models {
    /// Loads every model from `dir` with default [`RuntimeOptions`].
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Models> {
        Models::load_dir_with(dir, &RuntimeOptions::default())
    }

    /// Loads every model from `dir`, refusing any file whose sha256 differs from its constant.
    pub fn load_dir_with(dir: impl AsRef<Path>, opts: &RuntimeOptions) -> Result<Models> {
        let dir = dir.as_ref();
        Models::assemble(opts, |spec| {
            let path = dir.join(spec.file);
            std::fs::read(&path)
                .map(Source::Owned)
                .map_err(|e| VisionError::Model(format!("{}: {e}", path.display())))
        })
    }

    /// Loads the copies compiled into the binary from `models/` with default options.
    pub fn load_embedded() -> Result<Models> {
        Models::load_embedded_with(&RuntimeOptions::default())
    }

    /// Loads the copies compiled into the binary; they are checksum-verified like files, so a
    /// build from a tree with a corrupted model fails at start-up rather than matching badly.
    pub fn load_embedded_with(opts: &RuntimeOptions) -> Result<Models> {
        Models::assemble(opts, |spec| {
            let bytes: &'static [u8] = match spec.file {
                f if f == YUNET.file => embedded::YUNET,
                f if f == SFACE.file => embedded::SFACE,
                f if f == MINIFASNET_V2.file => embedded::MINIFASNET_V2,
                f if f == MINIFASNET_V1SE.file => embedded::MINIFASNET_V1SE,
                f if f == FACE_MESH.file => embedded::FACE_MESH,
                other => return Err(VisionError::Model(format!("{other}: not embedded"))),
            };
            Ok(Source::Static(bytes))
        })
    }

    fn assemble(
        opts: &RuntimeOptions,
        mut fetch: impl FnMut(ModelFile) -> Result<Source>,
    ) -> Result<Models> {
        let pool = opts
            .threads
            .map(|n| Arc::new(rten::ThreadPool::with_num_threads(n.max(1))));
        let mut one = |spec: ModelFile| load_model(spec, fetch(spec)?, opts, &pool);
        Ok(Models {
            detector: one(YUNET)?,
            recognizer: one(SFACE)?,
            antispoof_v2: one(MINIFASNET_V2)?,
            antispoof_v1se: one(MINIFASNET_V1SE)?,
            face_mesh: one(FACE_MESH)?,
        })
    }
}

mod embedded {
    //! The model files baked into the binary (about 45 MB), for single-file deployment.

    macro_rules! model_bytes {
        ($file:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/", $file))
        };
    }

    pub(super) static YUNET: &[u8] = model_bytes!("yunet_2023mar_dynamic.onnx");
    pub(super) static SFACE: &[u8] = model_bytes!("sface_2021dec_fp32.onnx");
    pub(super) static MINIFASNET_V2: &[u8] = model_bytes!("minifasnet_v2_2.7_80x80.onnx");
    pub(super) static MINIFASNET_V1SE: &[u8] = model_bytes!("minifasnet_v1se_4.0_80x80.onnx");
    pub(super) static FACE_MESH: &[u8] = model_bytes!("mediapipe_face_landmark.onnx");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::testutil;

    #[test]
    fn checksums_are_enforced() {
        let err = verify(YUNET, b"not a model").unwrap_err();
        assert_eq!(err.code(), "model_error");
        assert!(err.to_string().contains(YUNET.file));
    }

    #[test]
    fn embedded_models_match_the_directory_and_run() {
        for spec in ALL_MODELS {
            let on_disk = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("models")
                    .join(spec.file),
            )
            .unwrap();
            assert_eq!(sha256_hex(&on_disk), spec.sha256, "{}", spec.file);
        }
        let models = Models::load_embedded_with(&RuntimeOptions {
            threads: Some(1),
            ..Default::default()
        })
        .unwrap();
        let input = Tensor::new(vec![1, 3, 80, 80], vec![128.0; 3 * 80 * 80]).unwrap();
        let out = models.antispoof_v2.run(input, &["prob"]).unwrap();
        assert_eq!(out[0].shape, [1, 3]);
        let sum: f32 = out[0].data.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "softmax output sums to {sum}");
    }

    #[test]
    fn unknown_output_is_a_model_error() {
        let input = Tensor::new(vec![1, 3, 112, 112], vec![0.0; 3 * 112 * 112]).unwrap();
        let err = testutil::models()
            .recognizer
            .run(input, &["nope"])
            .unwrap_err();
        assert_eq!(err.code(), "model_error");
    }

    #[test]
    fn tensor_shape_is_checked() {
        assert!(Tensor::new(vec![2, 2], vec![0.0; 3]).is_err());
    }
}

/// ONNX Runtime, loaded from the operator's library at start-up (feature `ort`).
#[cfg(feature = "ort")]
mod ort_backend {
    use std::sync::{Arc, Mutex, OnceLock};

    use super::{Model, RuntimeOptions, Tensor};
    use crate::vision::{Result, VisionError};

    /// The process's one ONNX Runtime environment, from the first library path given.
    static ENVIRONMENT: OnceLock<std::result::Result<Arc<ort::environment::Environment>, String>> =
        OnceLock::new();

    fn environment(opts: &RuntimeOptions) -> Result<Arc<ort::environment::Environment>> {
        ENVIRONMENT
            .get_or_init(|| {
                let path = opts.ort_library.clone().ok_or_else(|| {
                    "the ort backend needs models.ort_library (or KYCD_ORT_LIBRARY): the path of libonnxruntime.so".to_owned()
                })?;
                let builder = ort::init_from(&path)
                    .map_err(|e| format!("ONNX Runtime at {}: {e}", path.display()))?;
                builder
                    .with_name("kycd")
                    .build()
                    .map(Arc::new)
                    .map_err(|e| format!("ONNX Runtime environment: {e}"))
            })
            .clone()
            .map_err(VisionError::Model)
    }

    /// One ONNX Runtime session. `Session::run` needs `&mut`: runs of one model take turns,
    /// each with every intra-op thread (a pool of sessions, one per recogniser worker, was
    /// measured no faster on 2 cores).
    struct OrtModel {
        session: Mutex<ort::session::Session>,
        input: String,
        name: &'static str,
    }

    pub(super) fn load(
        name: &'static str,
        bytes: &[u8],
        opts: &RuntimeOptions,
    ) -> Result<Arc<dyn Model>> {
        let err = |e: &dyn std::fmt::Display| VisionError::Model(format!("{name}: {e}"));
        let env = environment(opts)?;
        let threads = opts.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let session = ort::session::Session::builder(&env)
            .map_err(|e| err(&e))?
            .with_intra_threads(threads)
            .map_err(|e| err(&e))?
            .commit_from_memory(bytes)
            .map_err(|e| err(&e))?;
        let input = session
            .inputs()
            .first()
            .map(|i| i.name().to_owned())
            .ok_or_else(|| err(&"no input"))?;
        Ok(Arc::new(OrtModel {
            session: Mutex::new(session),
            input,
            name,
        }))
    }

    impl Model for OrtModel {
        fn concurrent_runs(&self) -> bool {
            false
        }

        fn run(&self, input: Tensor, outputs: &[&str]) -> Result<Vec<Tensor>> {
            let err = |e: &dyn std::fmt::Display| VisionError::Model(format!("{}: {e}", self.name));
            let value =
                ort::value::Tensor::from_array((input.shape, input.data)).map_err(|e| err(&e))?;
            let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
            let result = session
                .run(ort::inputs![self.input.as_str() => value])
                .map_err(|e| err(&e))?;
            outputs
                .iter()
                .map(|name| {
                    let value = result
                        .get(name)
                        .ok_or_else(|| err(&format!("no output {name}")))?;
                    let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| err(&e))?;
                    Ok(Tensor {
                        shape: shape.iter().map(|&d| d.max(0) as usize).collect(),
                        data: data.to_vec(),
                    })
                })
                .collect()
        }
    }
}

/// Without the `ort` feature the ONNX Runtime backend is refused at start-up.
#[cfg(not(feature = "ort"))]
mod ort_backend {
    use std::sync::Arc;

    use super::{Model, RuntimeOptions};
    use crate::vision::{Result, VisionError};

    pub(super) fn load(
        name: &'static str,
        _bytes: &[u8],
        _opts: &RuntimeOptions,
    ) -> Result<Arc<dyn Model>> {
        Err(VisionError::Model(format!(
            "{name}: the ort backend needs a kycd built with `--features ort`"
        )))
    }
}

/// The face models on ONNX Runtime give what rten gives (feature `ort`; `scripts/test` points
/// `KYCD_ORT_LIBRARY` at the library it fetched).
#[cfg(all(test, feature = "ort"))]
mod ort_backend_tests {
    use crate::config::{Backend, ModelsConfig};
    use crate::vision::facematch::Role;
    use crate::vision::service::Vision;

    #[test]
    fn ort_backend_analyses_faces_like_rten() {
        let library = std::env::var_os("KYCD_ORT_LIBRARY")
            .expect("KYCD_ORT_LIBRARY: the path of libonnxruntime.so (scripts/test fetches it)");
        let rten = Vision::load(&ModelsConfig::default()).expect("rten loads");
        let ort = Vision::load(&ModelsConfig {
            backend: Backend::Ort,
            ort_library: Some(library.into()),
            ..Default::default()
        })
        .expect("ONNX Runtime loads every model");
        let face = |name: &str| {
            let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
            image::open(path).unwrap().to_rgb8()
        };
        for name in ["obama.jpg", "obama2.jpg", "biden.jpg"] {
            let img = face(name);
            let a = rten.analyzer.analyze(&img, Role::Selfie).unwrap();
            let b = ort.analyzer.analyze(&img, Role::Selfie).unwrap();
            let same = a.embedding.cosine(&b.embedding);
            assert!(same > 0.99, "{name}: embeddings differ (cosine {same})");
            let pa = rten.passive.signals(&img, &a).unwrap().model.p_real;
            let pb = ort.passive.signals(&img, &b).unwrap().model.p_real;
            assert!((pa - pb).abs() < 0.02, "{name}: p_real {pa} vs {pb}");
        }
    }
}
