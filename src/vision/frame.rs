//! Pixels in and tensors out: resizing 8-bit RGB images and laying them out as the f32 NCHW
//! tensors the models expect. Uploads are decoded by [`crate::media::intake`], the one intake path.
//!
//! Images are held as [`image::RgbImage`] (RGB, 8 bits, row-major). Models trained with OpenCV
//! expect BGR channel order, so the channel order is chosen here, per model, and nowhere else.

use image::imageops::FilterType;
use image::RgbImage;

use super::runtime::Tensor;
use super::{Result, VisionError};

/// Resizes to exactly `width`×`height` with a triangle (bilinear) filter. When shrinking, the
/// filter widens with the scale, so large downscales average instead of aliasing.
pub fn resize(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if img.dimensions() == (width, height) {
        return img.clone();
    }
    image::imageops::resize(img, width.max(1), height.max(1), FilterType::Triangle)
}

/// Channel order of a model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue (SFace).
    Rgb,
    /// Blue, green, red: models trained on OpenCV-decoded images (YuNet, MiniFASNet).
    Bgr,
}

/// Lays `img` out as a `[1, 3, height, width]` tensor of raw 0–255 values, at the top-left of a
/// black canvas. `width`/`height` must be at least the image size; the rest stays 0, which is
/// what the detector saw as padding in training.
pub fn to_nchw(img: &RgbImage, order: ChannelOrder, width: u32, height: u32) -> Result<Tensor> {
    let (iw, ih) = img.dimensions();
    if iw > width || ih > height {
        return Err(VisionError::Model(format!(
            "{iw}×{ih} image does not fit a {width}×{height} tensor"
        )));
    }
    let (w, h) = (width as usize, height as usize);
    let plane = w * h;
    let mut data = vec![0f32; 3 * plane];
    let channels = match order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    for (x, y, px) in img.enumerate_pixels() {
        let at = y as usize * w + x as usize;
        for (plane_idx, &c) in channels.iter().enumerate() {
            data[plane_idx * plane + at] = f32::from(px[c]);
        }
    }
    Tensor::new(vec![1, 3, h, w], data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn nchw_puts_channels_in_the_requested_order_and_pads_with_black() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([10, 20, 30]));
        img.put_pixel(1, 0, Rgb([40, 50, 60]));
        let t = to_nchw(&img, ChannelOrder::Bgr, 3, 2).unwrap();
        assert_eq!(t.shape, [1, 3, 2, 3]);
        // Plane 0 is blue: first row [30, 60, pad], second row all padding.
        assert_eq!(&t.data[0..6], &[30.0, 60.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&t.data[12..15], &[10.0, 40.0, 0.0]);
        let t = to_nchw(&img, ChannelOrder::Rgb, 2, 1).unwrap();
        assert_eq!(t.data, [10.0, 40.0, 20.0, 50.0, 30.0, 60.0]);
        assert!(to_nchw(&img, ChannelOrder::Rgb, 1, 1).is_err());
    }
}
