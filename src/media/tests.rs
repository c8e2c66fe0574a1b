use std::io::{Read, Write};
use std::net::TcpListener;

use image::{Rgb, RgbImage};

use super::test_util::{contains, exif_jpeg};
use super::*;
use crate::error::ErrorCode;
use crate::store::test_store;
use crate::tenancy;

fn service(av: AntivirusConfig) -> (tempfile::TempDir, Arc<Store>, MediaService, String) {
    let (dir, store) = test_store();
    let store = Arc::new(store);
    let tenant = tenancy::create_tenant(&store, "T", "free", "test").unwrap();
    let media = MediaService::new(
        store.clone(),
        objects::Objects::Local(objects::ObjectDir::open(&dir.path().join("objects")).unwrap()),
        IntakeLimits::default(),
        av,
        crate::admission::Budget::new("decoded", 1 << 30, 1 << 30, Duration::from_secs(1)),
    )
    .unwrap();
    (dir, store, media, tenant.id)
}

fn selfie() -> RgbImage {
    RgbImage::from_fn(320, 240, |x, y| {
        Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    })
}

fn all_bytes_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn stored_media_is_encrypted_and_erasure_shreds_only_that_subject() {
    let (dir, store, media, tenant) = service(AntivirusConfig::default());
    let upload = exif_jpeg(&selfie(), 1, b"PLAIN-MARKER-4711");
    let intake = media
        .accept(&upload, &mut media.hold("t"), Keep::Full)
        .unwrap();
    let s = media
        .put(
            &tenant,
            "subject-S",
            MediaKind::Selfie,
            &intake.image,
            1_000,
        )
        .unwrap()
        .unwrap();
    let other = media
        .put(
            &tenant,
            "subject-T",
            MediaKind::Selfie,
            &intake.image,
            1_000,
        )
        .unwrap()
        .unwrap();

    let (_, stored) = media.get(&tenant, &s.id).unwrap();
    assert!(stored.starts_with(&[0xFF, 0xD8]), "decrypts to a JPEG");
    assert!(!contains(&stored, b"PLAIN-MARKER-4711"), "metadata dropped");
    // Nothing readable anywhere in the data directory: not the marker, not the upload, not the
    // stored JPEG's plaintext.
    for (path, bytes) in all_bytes_under(dir.path()) {
        assert!(
            !contains(&bytes, b"PLAIN-MARKER-4711"),
            "{}",
            path.display()
        );
        assert!(
            !contains(&bytes, &upload[200..264]),
            "upload bytes in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, &stored[200..264]),
            "stored plaintext in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, b"JFIF"),
            "JPEG header in {}",
            path.display()
        );
    }

    let receipt = media
        .erase_subject(&tenant, "subject-S", "key:test", 2_000)
        .unwrap();
    assert_eq!(
        receipt.deleted,
        ErasureCounts {
            media: 1,
            embeddings: 0,
            records: 1
        }
    );
    assert!(matches!(
        media.get(&tenant, &s.id),
        Err(MediaError::Store(StoreError::NotFound(_)))
    ));
    assert!(media.list(&tenant, "subject-S").unwrap().is_empty());
    assert!(!dir
        .path()
        .join("objects")
        .join(&s.object[..2])
        .join(&s.object[2..])
        .exists());
    // The other subject is untouched.
    assert_eq!(
        media.get(&tenant, &other.id).unwrap().1.len() as i64,
        other.size
    );
    // Erasure is audited without the subject id, and is idempotent.
    let audit = store
        .read(|c| store::audit::list(c, Some(&tenant), 100))
        .unwrap();
    let entry = audit.iter().find(|a| a.action == "subject.erase").unwrap();
    assert!(
        !entry.details.contains("subject-S")
            && !entry.target.as_ref().unwrap().contains("subject-S")
    );
    let again = media
        .erase_subject(&tenant, "subject-S", "key:test", 2_001)
        .unwrap();
    assert_eq!(again.deleted.media, 0);
}

#[test]
fn a_rotated_gps_tagged_photo_is_stored_upright_and_bare() {
    let (_dir, _store, media, tenant) = service(AntivirusConfig::default());
    let landscape = RgbImage::from_fn(400, 200, |x, _| {
        if x < 200 {
            Rgb([250, 0, 0])
        } else {
            Rgb([0, 0, 250])
        }
    });
    let upload = exif_jpeg(&landscape, 6, b"GPS-47.3769N-8.5417E");
    let accepted = media
        .accept(&upload, &mut media.hold("t"), Keep::Full)
        .unwrap();
    let row = media
        .put(&tenant, "s", MediaKind::Selfie, &accepted.image, 0)
        .unwrap()
        .unwrap();
    let (_, stored) = media.get(&tenant, &row.id).unwrap();
    assert!(
        !contains(&stored, b"Exif") && !contains(&stored, b"GPS-47.3769N"),
        "no metadata"
    );
    let back = image::load_from_memory(&stored).unwrap().to_rgb8();
    assert_eq!(
        back.dimensions(),
        (200, 400),
        "portrait: orientation 6 applied"
    );
    assert!(
        back.get_pixel(100, 50)[0] > 200,
        "the left (red) half is now on top"
    );
}

#[test]
fn ciphertext_copies_are_useless_after_erasure() {
    let (dir, _store, media, tenant) = service(AntivirusConfig::default());
    let row = media
        .put(&tenant, "s1", MediaKind::Selfie, &selfie(), 1)
        .unwrap()
        .unwrap();
    let path = dir
        .path()
        .join("objects")
        .join(&row.object[..2])
        .join(&row.object[2..]);
    let copy = std::fs::read(&path).unwrap(); // as if an SSD block or a backup kept it
    media.erase_subject(&tenant, "s1", "t", 2).unwrap();
    // A new subject with the same id gets a new key: the old ciphertext does not open.
    let new = media
        .put(&tenant, "s1", MediaKind::Selfie, &selfie(), 3)
        .unwrap()
        .unwrap();
    std::fs::write(
        dir.path()
            .join("objects")
            .join(&new.object[..2])
            .join(&new.object[2..]),
        &copy,
    )
    .unwrap();
    assert!(media.get(&tenant, &new.id).is_err());
}

#[test]
fn retention_sweeper_deletes_exactly_what_expired() {
    let (dir, store, media, tenant) = service(AntivirusConfig::default());
    let day = 86_400;
    let a = media
        .put(&tenant, "a", MediaKind::Selfie, &selfie(), 0)
        .unwrap()
        .unwrap();
    let b = media
        .put(&tenant, "b", MediaKind::DocumentFront, &selfie(), 5 * day)
        .unwrap()
        .unwrap();
    assert_eq!(a.expires_at, 30 * day);
    assert_eq!(media.sweep_expired(30 * day - 1).unwrap(), 0);
    assert_eq!(media.sweep_expired(30 * day).unwrap(), 1);
    assert!(media.get(&tenant, &a.id).is_err());
    assert!(!dir
        .path()
        .join("objects")
        .join(&a.object[..2])
        .join(&a.object[2..])
        .exists());
    assert!(media.get(&tenant, &b.id).is_ok());
    assert_eq!(media.sweep_expired(35 * day).unwrap(), 1);

    assert!(
        media
            .put(&tenant, "c", MediaKind::Frame, &selfie(), 0)
            .unwrap()
            .is_none(),
        "liveness frames are not kept by default"
    );
    let policy = tenancy::MediaPolicy {
        media_retention_days: 0,
        media_kinds: MediaKind::ALL.to_vec(),
    };
    tenancy::set_media_policy(&store, &tenant, &policy, "t").unwrap();
    assert!(
        media
            .put(&tenant, "c", MediaKind::Selfie, &selfie(), 0)
            .unwrap()
            .is_none(),
        "0 days: keep nothing"
    );
    let policy = tenancy::MediaPolicy {
        media_retention_days: 1,
        media_kinds: vec![MediaKind::Frame],
    };
    tenancy::set_media_policy(&store, &tenant, &policy, "t").unwrap();
    assert!(media
        .put(&tenant, "c", MediaKind::Frame, &selfie(), 0)
        .unwrap()
        .is_some());
    assert!(media
        .put(&tenant, "c", MediaKind::Selfie, &selfie(), 0)
        .unwrap()
        .is_none());
}

#[test]
fn stored_sizes_fit_a_session_budget() {
    let (_dir, _store, media, tenant) = service(AntivirusConfig::default());
    // Camera-like content: noise plus gradients compresses like a photo, badly.
    let mut seed = 7u32;
    let mut noisy = |w: u32, h: u32| {
        RgbImage::from_fn(w, h, |x, y| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let n = (seed >> 24) as u8 / 8;
            Rgb([
                (x / 8) as u8 ^ n,
                (y / 6) as u8 ^ n,
                ((x + y) / 10) as u8 ^ n,
            ])
        })
    };
    let mut total = 0;
    for (kind, w, h) in [
        (MediaKind::Selfie, 1280, 720),
        (MediaKind::DocumentFront, 1920, 1200),
        (MediaKind::DocumentBack, 1920, 1200),
        (MediaKind::FaceCrop, 300, 300),
    ] {
        total += media
            .put(&tenant, "s", kind, &noisy(w, h), 0)
            .unwrap()
            .unwrap()
            .size;
    }
    assert!(total < 400 * 1024, "session stores {total} bytes");
}

/// A clamd stand-in: answers INSTREAM, finding "EICAR" in the stream.
fn fake_clamd() -> (String, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming().take(2) {
            let mut s = stream.unwrap();
            let mut cmd = [0u8; 10];
            s.read_exact(&mut cmd).unwrap();
            assert_eq!(&cmd, b"zINSTREAM\0");
            let mut data = Vec::new();
            loop {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).unwrap();
                let n = u32::from_be_bytes(len) as usize;
                if n == 0 {
                    break;
                }
                let mut chunk = vec![0u8; n];
                s.read_exact(&mut chunk).unwrap();
                data.extend_from_slice(&chunk);
            }
            let reply: &[u8] = if contains(&data, b"EICAR") {
                b"stream: Eicar-Test-Signature FOUND\0"
            } else {
                b"stream: OK\0"
            };
            s.write_all(reply).unwrap();
            served += 1;
        }
        served
    });
    (addr, handle)
}

#[test]
fn clamd_instream_verdicts_and_unreachable_policy() {
    let (addr, server) = fake_clamd();
    let av = AntivirusConfig {
        clamd: Some(addr),
        ..Default::default()
    };
    let (_dir, _store, media, _tenant) = service(av);
    let clean = intake::encode_jpeg(&selfie(), 85);
    assert!(media
        .accept(&clean, &mut media.hold("t"), Keep::Full)
        .is_ok());
    let mut infected = clean.clone();
    infected.extend_from_slice(
        b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    );
    let err = media
        .accept(&infected, &mut media.hold("t"), Keep::Full)
        .unwrap_err();
    assert!(
        matches!(&err, MediaError::Malware { signature } if signature == "Eicar-Test-Signature")
    );
    assert_eq!(err.code().status().as_u16(), 422);
    assert_eq!(server.join().unwrap(), 2);

    // Nothing listens on this port any more.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let closed = AntivirusConfig {
        clamd: Some(dead.clone()),
        timeout_secs: 1,
        ..Default::default()
    };
    let (_d, _s, media, _t) = service(closed);
    let err = media
        .accept(&clean, &mut media.hold("t"), Keep::Full)
        .unwrap_err();
    assert!(matches!(err, MediaError::AntivirusUnavailable));
    assert_eq!(err.code().status().as_u16(), 503);
    let open = AntivirusConfig {
        clamd: Some(dead),
        timeout_secs: 1,
        fail_open: true,
    };
    let (_d, _s, media, _t) = service(open);
    assert!(media
        .accept(&clean, &mut media.hold("t"), Keep::Full)
        .is_ok());
}
