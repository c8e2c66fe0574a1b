//! The embedded face index: each tenant's enrolled faces as int8 codes in one contiguous slab,
//! searched by an exact scan (no approximation beyond the quantisation, deletes that really
//! delete). A tenant's search never touches another tenant's partition.
//!
//! A 128-d unit vector is stored as 128 signed bytes and one scale (`max |v| / 127`), so the
//! cosine of two faces is `scale_a · scale_b · Σ qa·qb` computed in integers: 132 bytes of vector
//! per face, against 512 as f32. Beside it, its 128 signs as two words (16 bytes): the Hamming
//! distance of two sign codes follows the angle between the faces, so a large partition is first
//! ranked by Hamming distance (16 bytes read per face instead of 132) and only its closest
//! `RERANK` faces are scored on the int8 codes — every face is still looked at, none is skipped by
//! a graph or a cluster, and a face is gone from the arrays the moment it is removed. Large
//! partitions are scanned on every core. The index is memory only: the database holds the sealed
//! embeddings, and the index is rebuilt from them at start.

use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, RwLock};

/// Dimensions of an SFace embedding.
pub const DIM: usize = crate::vision::embed::EMBEDDING_DIM;

/// Partitions at least this large are scanned in parallel.
const PARALLEL_FROM: usize = 32_768;

/// Partitions at least this large are ranked on sign codes first.
const PREFILTER_FROM: usize = 8_192;

/// At least this many faces (or one in `RERANK_SHARE`) of a prefiltered partition are scored on
/// their int8 codes.
const RERANK: usize = 8_192;
const RERANK_SHARE: usize = 64;

/// A face as the index keeps it.
#[derive(Debug, Clone)]
struct Meta {
    id: Arc<str>,
    subject: Arc<str>,
    collection: Arc<str>,
}

/// One tenant's faces: codes, scales and metadata in parallel arrays.
#[derive(Default)]
struct Partition {
    codes: Vec<i8>,
    signs: Vec<Signs>,
    scales: Vec<f32>,
    meta: Vec<Meta>,
    by_id: HashMap<Arc<str>, usize>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The enrolled face.
    pub face_id: String,
    /// Its subject.
    pub subject_id: String,
    /// Cosine between the query and the face (from the int8 codes).
    pub cosine: f32,
}

/// The int8 code and scale of a vector.
pub fn quantize(v: &[f32]) -> ([i8; DIM], f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let mut codes = [0i8; DIM];
    if max <= f32::EPSILON || v.len() != DIM {
        return (codes, 0.0);
    }
    let scale = max / 127.0;
    for (c, x) in codes.iter_mut().zip(v) {
        *c = (x / scale).round().clamp(-127.0, 127.0) as i8;
    }
    (codes, scale)
}

/// The signs of a vector's 128 components, one bit each.
type Signs = [u64; 2];

fn signs(codes: &[i8; DIM]) -> Signs {
    let mut s = [0u64; 2];
    for (i, c) in codes.iter().enumerate() {
        if *c < 0 {
            s[i / 64] |= 1 << (i % 64);
        }
    }
    s
}

#[inline]
fn dot(a: &[i8; DIM], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum()
}

// The two loops every search spends its time in, compiled once per instruction set and chosen
// at run time (`multiversion`): the baseline x86-64 build has neither POPCNT nor AVX2, which
// make them several times faster on any server of the last decade.

/// The Hamming distance of each sign code from `query`.
#[multiversion::multiversion(targets("x86_64+avx2+popcnt", "x86_64+popcnt"))]
fn hamming_all(query: &Signs, signs: &[Signs], out: &mut [u8]) {
    for (d, s) in out.iter_mut().zip(signs) {
        *d = ((query[0] ^ s[0]).count_ones() + (query[1] ^ s[1]).count_ones()) as u8;
    }
}

/// The cosine of the faces at `positions` (every face if `None`) that reach `min_cosine`, as
/// `(cosine, position)`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2"))]
fn score(
    query: &[i8; DIM],
    qscale: f32,
    codes: &[i8],
    scales: &[f32],
    positions: Option<&[u32]>,
    min_cosine: f32,
    out: &mut Vec<(f32, usize)>,
) {
    let mut one = |at: usize| {
        let cosine = dot(query, &codes[at * DIM..(at + 1) * DIM]) as f32 * qscale * scales[at];
        if cosine >= min_cosine {
            out.push((cosine, at));
        }
    };
    match positions {
        Some(positions) => positions.iter().for_each(|at| one(*at as usize)),
        None => (0..scales.len()).for_each(one),
    }
}

/// Candidates kept while scanning: a min-heap on cosine of at most `k`.
struct Best {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<(Ordered, usize)>>,
}

/// A cosine ordered by `total_cmp`, for the heap.
#[derive(Debug, Clone, Copy)]
struct Ordered(f32);

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ordered {}

impl Best {
    fn new(k: usize) -> Self {
        Best {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, cosine: f32, at: usize) {
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse((Ordered(cosine), at)));
        } else if let Some(std::cmp::Reverse((low, _))) = self.heap.peek() {
            if cosine > low.0 {
                self.heap.pop();
                self.heap.push(std::cmp::Reverse((Ordered(cosine), at)));
            }
        }
    }
}

impl Partition {
    /// The `k` best of `scored` inside `collection`.
    fn best(&self, scored: Vec<(f32, usize)>, collection: Option<&str>, k: usize) -> Best {
        let mut best = Best::new(k);
        for (cosine, at) in scored {
            if collection.is_none_or(|c| &*self.meta[at].collection == c) {
                best.offer(cosine, at);
            }
        }
        best
    }

    /// Every face scored on its int8 code.
    fn scan(
        &self,
        query: &[i8; DIM],
        qscale: f32,
        collection: Option<&str>,
        min_cosine: f32,
        k: usize,
    ) -> Best {
        let mut scored = Vec::new();
        let (codes, scales) = (&self.codes, &self.scales);
        score(query, qscale, codes, scales, None, min_cosine, &mut scored);
        self.best(scored, collection, k)
    }

    /// The Hamming distance of every face from `query` into `out` (`u8::MAX` for a face outside
    /// the collection), counted per distance.
    fn distances(
        &self,
        query: &Signs,
        first: usize,
        out: &mut [u8],
        collection: Option<&str>,
    ) -> [u32; DIM + 1] {
        hamming_all(query, &self.signs[first..first + out.len()], out);
        if let Some(c) = collection {
            for (i, d) in out.iter_mut().enumerate() {
                if &*self.meta[first + i].collection != c {
                    *d = u8::MAX;
                }
            }
        }
        let mut histogram = [0u32; DIM + 1];
        for d in out.iter() {
            if let Some(h) = histogram.get_mut(usize::from(*d)) {
                *h += 1;
            }
        }
        histogram
    }

    /// Every face ranked on its sign code, the closest `want` scored on their int8 codes.
    fn prefiltered(
        &self,
        query: &[i8; DIM],
        qscale: f32,
        collection: Option<&str>,
        min_cosine: f32,
        k: usize,
    ) -> Best {
        let n = self.meta.len();
        let qs = signs(query);
        let mut dist = vec![0u8; n];
        let histogram = if n < PARALLEL_FROM {
            self.distances(&qs, 0, &mut dist, collection)
        } else {
            let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
            let chunk = n.div_ceil(threads);
            std::thread::scope(|s| {
                let parts: Vec<_> = dist
                    .chunks_mut(chunk)
                    .enumerate()
                    .map(|(t, out)| {
                        let qs = &qs;
                        s.spawn(move || self.distances(qs, t * chunk, out, collection))
                    })
                    .collect();
                parts
                    .into_iter()
                    .map(|h| h.join().expect("scan thread"))
                    .fold([0u32; DIM + 1], |mut sum, h| {
                        sum.iter_mut().zip(h).for_each(|(a, b)| *a += b);
                        sum
                    })
            })
        };
        let want = RERANK.max(n / RERANK_SHARE).max(k);
        let mut cutoff = 0u8;
        let mut taken = 0usize;
        for (d, count) in histogram.iter().enumerate() {
            cutoff = d as u8;
            taken += *count as usize;
            if taken >= want {
                break;
            }
        }
        let mut positions = Vec::with_capacity(taken);
        for (at, d) in dist.iter().enumerate() {
            if *d <= cutoff {
                positions.push(at as u32);
            }
        }
        let mut scored = Vec::with_capacity(positions.len());
        let (codes, scales) = (&self.codes, &self.scales);
        score(
            query,
            qscale,
            codes,
            scales,
            Some(&positions),
            min_cosine,
            &mut scored,
        );
        self.best(scored, collection, k)
    }
}

/// Every tenant's faces.
#[derive(Default)]
pub struct FaceIndex {
    tenants: RwLock<HashMap<String, Partition>>,
    /// Held from a change's commit to its arrival in the index (and by the follower from its
    /// read to its last insert), so a stale read can never put back a face just removed.
    changes: std::sync::Mutex<()>,
}

impl FaceIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serialises changes to the index with the database writes they follow.
    pub fn lock_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces) a face of `tenant_id`.
    pub fn insert(
        &self,
        tenant_id: &str,
        face_id: &str,
        subject_id: &str,
        collection: &str,
        embedding: &[f32],
    ) {
        let (codes, scale) = quantize(embedding);
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        let p = tenants.entry(tenant_id.to_owned()).or_default();
        if let Some(&at) = p.by_id.get(face_id) {
            p.codes[at * DIM..(at + 1) * DIM].copy_from_slice(&codes);
            p.signs[at] = signs(&codes);
            p.scales[at] = scale;
            return;
        }
        let meta = Meta {
            id: face_id.into(),
            subject: subject_id.into(),
            collection: collection.into(),
        };
        p.by_id.insert(meta.id.clone(), p.meta.len());
        p.codes.extend_from_slice(&codes);
        p.signs.push(signs(&codes));
        p.scales.push(scale);
        p.meta.push(meta);
    }

    /// Removes a face; whether it was there. The last face takes its place (no tombstones).
    pub fn remove(&self, tenant_id: &str, face_id: &str) -> bool {
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        let Some(p) = tenants.get_mut(tenant_id) else {
            return false;
        };
        let Some(at) = p.by_id.remove(face_id) else {
            return false;
        };
        let last = p.meta.len() - 1;
        if at != last {
            p.codes.copy_within(last * DIM..(last + 1) * DIM, at * DIM);
            p.signs[at] = p.signs[last];
            p.scales[at] = p.scales[last];
            p.meta.swap(at, last);
            p.by_id.insert(p.meta[at].id.clone(), at);
        }
        p.codes.truncate(last * DIM);
        p.signs.truncate(last);
        p.scales.truncate(last);
        p.meta.truncate(last);
        if p.meta.is_empty() {
            tenants.remove(tenant_id);
        }
        true
    }

    /// Removes every face of a subject; how many.
    pub fn remove_subject(&self, tenant_id: &str, subject_id: &str) -> usize {
        let ids: Vec<Arc<str>> = {
            let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
            tenants.get(tenant_id).map_or_else(Vec::new, |p| {
                p.meta
                    .iter()
                    .filter(|m| &*m.subject == subject_id)
                    .map(|m| m.id.clone())
                    .collect()
            })
        };
        ids.iter().filter(|id| self.remove(tenant_id, id)).count()
    }

    /// The `top_k` faces of `tenant_id` (in `collection`, if given) most like `query`, with a
    /// cosine of at least `min_cosine`, best first.
    pub fn search(
        &self,
        tenant_id: &str,
        query: &[f32],
        collection: Option<&str>,
        top_k: usize,
        min_cosine: f32,
    ) -> Vec<Hit> {
        self.lookup(tenant_id, query, collection, top_k, min_cosine, false)
    }

    /// [`search`](Self::search) scoring every face on its int8 code, without the sign-code
    /// prefilter: what `kycd bench dedup` measures the prefilter's recall against.
    pub fn search_every_face(&self, tenant_id: &str, query: &[f32], top_k: usize) -> Vec<Hit> {
        self.lookup(tenant_id, query, None, top_k, -1.0, true)
    }

    fn lookup(
        &self,
        tenant_id: &str,
        query: &[f32],
        collection: Option<&str>,
        top_k: usize,
        min_cosine: f32,
        every_face: bool,
    ) -> Vec<Hit> {
        let (q, qscale) = quantize(query);
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        let Some(p) = tenants.get(tenant_id) else {
            return Vec::new();
        };
        let k = top_k.max(1);
        let best = if every_face || p.meta.len() < PREFILTER_FROM {
            p.scan(&q, qscale, collection, min_cosine, k)
        } else {
            p.prefiltered(&q, qscale, collection, min_cosine, k)
        };
        let mut hits: Vec<(f32, usize)> = best
            .heap
            .into_iter()
            .map(|std::cmp::Reverse((c, at))| (c.0, at))
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        hits.into_iter()
            .map(|(cosine, at)| Hit {
                face_id: p.meta[at].id.to_string(),
                subject_id: p.meta[at].subject.to_string(),
                cosine: cosine.clamp(-1.0, 1.0),
            })
            .collect()
    }

    /// Faces of `tenant_id`.
    pub fn len_of(&self, tenant_id: &str) -> usize {
        self.tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .map_or(0, |p| p.meta.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64) -> Vec<f32> {
        let mut rng = crate::vision::liveness::synthetic::Rng::new(seed);
        let v: Vec<f32> = (0..DIM).map(|_| rng.range(-1.0, 1.0)).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn near(v: &[f32], seed: u64, noise: f32) -> Vec<f32> {
        let e = unit(seed);
        let w: Vec<f32> = v.iter().zip(&e).map(|(a, b)| a + noise * b).collect();
        let n = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        w.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn finds_the_face_stays_in_its_tenant_and_deletes_for_real() {
        let index = FaceIndex::new();
        for i in 0..100u64 {
            let tenant = if i % 2 == 0 { "A" } else { "B" };
            index.insert(
                tenant,
                &format!("f{i}"),
                &format!("s{}", i % 10),
                "default",
                &unit(i),
            );
        }
        let q = near(&unit(42), 999, 0.3);
        let hits = index.search("A", &q, None, 3, -1.0);
        assert_eq!(hits[0].face_id, "f42");
        assert!(hits[0].cosine > 0.9 && hits[0].cosine > hits[1].cosine);
        assert!((hits[0].cosine - crate::vision::embed::cosine(&q, &unit(42))).abs() < 0.01);
        // Tenant B never sees A's faces, even the query's twin.
        assert!(index
            .search("B", &q, None, 50, -1.0)
            .iter()
            .all(|h| h.face_id != "f42"));
        // A threshold keeps strangers out; a collection narrows the search.
        assert_eq!(index.search("A", &q, None, 10, 0.5).len(), 1);
        index.insert("A", "g1", "s9", "staff", &unit(42));
        assert_eq!(
            index.search("A", &q, Some("staff"), 10, -1.0)[0].face_id,
            "g1"
        );
        // Deletes are real: the slot is reused, nothing of the face is scanned again.
        assert!(index.remove("A", "f42"));
        assert!(!index.remove("A", "f42"));
        assert_eq!(index.search("A", &q, Some("default"), 1, 0.5), vec![]);
        assert_eq!(index.len_of("A"), 50);
        assert_eq!(index.remove_subject("A", "s2"), 9, "f42 went already");
        assert_eq!(index.len_of("A"), 41);
        assert!(
            index.search("A", &unit(12), None, 1, 0.99).is_empty(),
            "s2's face gone"
        );
    }

    #[test]
    fn the_prefiltered_search_agrees_with_the_full_scan() {
        let index = FaceIndex::new();
        for i in 0..(PARALLEL_FROM as u64 + 1000) {
            let collection = if i % 3 == 0 { "staff" } else { "default" };
            index.insert("T", &format!("f{i}"), "s", collection, &unit(i));
        }
        let p = &index.tenants.read().unwrap()["T"];
        for (target, noise, collection) in [
            (31_337, 0.2, None),
            (12, 0.45, None),
            (30_000, 0.45, Some("staff")),
        ] {
            let q = near(&unit(target), 7, noise);
            let hits = index.search("T", &q, collection, 5, -1.0);
            assert_eq!(hits[0].face_id, format!("f{target}"));
            let (code, scale) = quantize(&q);
            let full = p.scan(&code, scale, collection, -1.0, 5);
            let mut s: Vec<usize> = full.heap.into_iter().map(|r| r.0 .1).collect();
            s.sort();
            let mut pre: Vec<usize> = hits.iter().map(|h| p.by_id[h.face_id.as_str()]).collect();
            pre.sort();
            assert_eq!(s, pre, "the same five faces as scoring every one");
        }
    }
}
