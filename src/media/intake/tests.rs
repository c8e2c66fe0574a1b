use std::time::Instant;

use image::{ImageBuffer, Luma, Rgb, Rgba};

use super::*;
use crate::error::ErrorCode;
use crate::media::test_util::{exif_jpeg, png_bytes, png_header_bomb, rss_bytes};

fn limits() -> IntakeLimits {
    IntakeLimits::default()
}

#[test]
fn sniffs_by_magic_bytes_only() {
    let img = RgbImage::from_pixel(4, 4, Rgb([10, 20, 30]));
    assert_eq!(sniff(&encode_jpeg(&img, 90)).unwrap(), Format::Jpeg);
    assert_eq!(
        sniff(&png_bytes(&DynamicImage::ImageRgb8(img))).unwrap(),
        Format::Png
    );
    assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), Format::Webp);
    assert!(matches!(
        sniff(b"GIF89a......"),
        Err(MediaError::UnsupportedType)
    ));
    assert!(matches!(
        sniff(b"%PDF-1.7"),
        Err(MediaError::UnsupportedType)
    ));
    assert!(matches!(sniff(b""), Err(MediaError::UnsupportedType)));
}

#[test]
fn base64_forms() {
    let l = limits();
    assert_eq!(decode_base64("aGVsbG8=", &l).unwrap(), b"hello");
    assert_eq!(decode_base64("aGVsbG8", &l).unwrap(), b"hello");
    assert_eq!(decode_base64(" aGVs\nbG8= ", &l).unwrap(), b"hello");
    assert_eq!(
        decode_base64("data:image/jpeg;base64,aGVsbG8=", &l).unwrap(),
        b"hello"
    );
    assert_eq!(decode_base64("_-8", &l).unwrap(), vec![0xFF, 0xEF]);
    assert!(matches!(
        decode_base64("data:image/png,abc", &l),
        Err(MediaError::InvalidBase64(_))
    ));
    assert!(matches!(
        decode_base64("a$b", &l),
        Err(MediaError::InvalidBase64(_))
    ));
    let small = IntakeLimits { max_bytes: 10, ..l };
    assert!(matches!(
        decode_base64(&"A".repeat(100), &small),
        Err(MediaError::PayloadTooLarge { limit: 10 })
    ));
}

#[test]
fn header_bomb_is_refused_before_any_pixel_buffer() {
    let bomb = png_header_bomb(50_000, 50_000);
    let before = rss_bytes();
    let started = Instant::now();
    let err = load(&bomb, &limits()).unwrap_err();
    let elapsed = started.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        matches!(
            err,
            MediaError::ImageTooLarge {
                width: 50_000,
                height: 50_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), crate::error::Code::ImageTooLarge);
    assert!(elapsed.as_millis() < 50, "took {elapsed:?}");
    assert!(grown < 100 * 1024 * 1024, "RSS grew by {grown} bytes");
}

#[test]
fn corrupt_and_truncated_images_are_invalid() {
    let img = RgbImage::from_fn(64, 64, |x, y| Rgb([x as u8 * 4, y as u8 * 4, 128]));
    let jpeg = encode_jpeg(&img, 90);
    assert!(jpeg_is_complete(&jpeg));
    for cut in [20, jpeg.len() / 2, jpeg.len() - 2] {
        assert!(
            matches!(
                load(&jpeg[..cut], &limits()),
                Err(MediaError::InvalidImage(_))
            ),
            "cut at {cut} of {}",
            jpeg.len()
        );
    }
    // Trailing bytes after EOI (camera trailers) are fine; an EXIF thumbnail's EOI does not
    // make a truncated main image complete.
    let mut trailer = jpeg.clone();
    trailer.extend_from_slice(b"TRAILER");
    assert!(load(&trailer, &limits()).is_ok());
    let with_exif = exif_jpeg(&img, 1, b"x\xFF\xD9y");
    assert!(jpeg_is_complete(&with_exif));
    assert!(!jpeg_is_complete(&with_exif[..with_exif.len() / 2]));
    let mut png = png_bytes(&DynamicImage::ImageRgb8(img.clone()));
    let n = png.len();
    png[n - 30] ^= 0xFF; // inside IDAT: checksum or inflate failure
    assert!(
        matches!(load(&png, &limits()), Err(MediaError::InvalidImage(_))),
        "corrupt PNG"
    );
    let png = png_bytes(&DynamicImage::ImageRgb8(img.clone()));
    assert!(
        matches!(
            load(&png[..png.len() - 40], &limits()),
            Err(MediaError::InvalidImage(_))
        ),
        "cut PNG"
    );
    assert!(matches!(
        load(b"\xFF\xD8\xFF\xE0garbage", &limits()),
        Err(MediaError::InvalidImage(_))
    ));
}

#[test]
fn sixteen_bit_grey_and_alpha_become_rgb8() {
    let grey16: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_pixel(8, 8, Luma([65535]));
    let out = load(&png_bytes(&DynamicImage::ImageLuma16(grey16)), &limits()).unwrap();
    assert_eq!(out.image.get_pixel(0, 0), &Rgb([255, 255, 255]));
    let clear: ImageBuffer<Rgba<u8>, Vec<u8>> = ImageBuffer::from_pixel(8, 8, Rgba([0, 0, 0, 0]));
    let out = load(&png_bytes(&DynamicImage::ImageRgba8(clear)), &limits()).unwrap();
    assert_eq!(
        out.image.get_pixel(3, 3),
        &Rgb([255, 255, 255]),
        "transparent over white"
    );
    let half: ImageBuffer<Rgba<u8>, Vec<u8>> = ImageBuffer::from_pixel(8, 8, Rgba([0, 0, 0, 128]));
    let out = load(&png_bytes(&DynamicImage::ImageRgba8(half)), &limits()).unwrap();
    assert_eq!(out.image.get_pixel(3, 3), &Rgb([127, 127, 127]));
}

#[test]
fn exif_orientation_is_applied_and_metadata_dropped() {
    // 40×20: left half red, right half blue; EXIF says "rotate 90° clockwise" and carries GPS.
    let img = RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let jpeg = exif_jpeg(&img, 6, b"KYCD-GPS-MARKER");
    assert!(crate::media::test_util::contains(&jpeg, b"KYCD-GPS-MARKER"));
    let out = load(&jpeg, &limits()).unwrap();
    assert!(out.reoriented);
    assert_eq!(out.image.dimensions(), (20, 40), "stored upright");
    // After a 90° clockwise turn the old left (red) is on top.
    let top = out.image.get_pixel(10, 5);
    let bottom = out.image.get_pixel(10, 35);
    assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
    let stored = encode_jpeg(&out.image, 90);
    assert!(!crate::media::test_util::contains(&stored, b"Exif"));
    assert!(!crate::media::test_util::contains(
        &stored,
        b"KYCD-GPS-MARKER"
    ));
}

#[test]
fn oversized_bytes_are_413() {
    let small = IntakeLimits {
        max_bytes: 100,
        ..limits()
    };
    let img = RgbImage::from_fn(64, 64, |x, y| Rgb([x as u8, y as u8, 7]));
    let err = load(&encode_jpeg(&img, 95), &small).unwrap_err();
    assert!(matches!(err, MediaError::PayloadTooLarge { limit: 100 }));
    assert_eq!(err.code().status().as_u16(), 413);
}
