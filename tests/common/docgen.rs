//! Synthetic identity documents for OCR accuracy: TD1, TD2 and TD3 pages with a correct MRZ in
//! OCR-B (check digits computed per ICAO 9303 part 3), printed fields, a portrait from the face
//! fixtures, then a camera's distortions (tilt, perspective, blur, glare, quarter turns, JPEG) on a background. The truth
//! (MRZ lines and fields) comes with each image.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

use kycd::vision::liveness::synthetic::Rng;

/// What the document says.
#[derive(Debug, Clone)]
pub struct Truth {
    pub format: &'static str,
    pub mrz: Vec<String>,
    pub surname: String,
    pub given_names: String,
    pub document_number: String,
    pub birth_date: String,
    pub expiry_date: String,
    pub nationality: String,
    pub sex: char,
}

const SURNAMES: &[&str] = &[
    "ERIKSSON",
    "MUSTERMANN",
    "DUPONT",
    "GARCIA",
    "ROSSI",
    "JANSEN",
    "SMITH",
    "NOWAK",
    "SILVA",
    "OKAFOR",
    "TANAKA",
    "MARTIN",
    "LEFEBVRE",
    "SCHMIDT",
    "KOWALSKI",
];
const GIVEN: &[&str] = &[
    "ANNA MARIA",
    "ERIKA",
    "JEAN PIERRE",
    "LUCIA",
    "MARCO",
    "PIETER",
    "JOHN",
    "AGNIESZKA",
    "JOAO",
    "CHIDI",
    "HANA",
    "CLAIRE",
    "LUKAS",
    "ZOFIA",
];
const STATES: &[&str] = &[
    "UTO", "D", "FRA", "ESP", "ITA", "NLD", "GBR", "POL", "PRT", "CAN",
];

fn value(c: char) -> u32 {
    match c {
        '0'..='9' => c as u32 - '0' as u32,
        'A'..='Z' => c as u32 - 'A' as u32 + 10,
        _ => 0,
    }
}

/// ICAO 9303 check digit (weights 7, 3, 1).
pub fn check_digit(s: &str) -> char {
    let sum: u32 = s
        .chars()
        .zip([7, 3, 1].iter().cycle())
        .map(|(c, w)| value(c) * w)
        .sum();
    char::from_digit(sum % 10, 10).unwrap()
}

fn pad(s: &str, n: usize) -> String {
    let mut s: String = s.chars().take(n).collect();
    while s.chars().count() < n {
        s.push('<');
    }
    s
}

fn name_field(surname: &str, given: &str, n: usize) -> String {
    pad(
        &format!("{}<<{}", surname.replace(' ', "<"), given.replace(' ', "<")),
        n,
    )
}

fn pick<'a>(rng: &mut Rng, items: &'a [&'a str]) -> &'a str {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

fn alnum(rng: &mut Rng, n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    (0..n)
        .map(|_| CHARS[(rng.next_u64() % CHARS.len() as u64) as usize] as char)
        .collect()
}

fn yymmdd(rng: &mut Rng, y0: u32, y1: u32) -> (String, String) {
    let y = y0 + (rng.next_u64() % u64::from(y1 - y0)) as u32;
    let m = 1 + (rng.next_u64() % 12) as u32;
    let d = 1 + (rng.next_u64() % 28) as u32;
    (
        format!("{:02}{m:02}{d:02}", y % 100),
        format!("{y}-{m:02}-{d:02}"),
    )
}

/// A random identity in `format` (`TD1`, `TD2` or `TD3`) with its MRZ, valid for years.
pub fn identity(rng: &mut Rng, format: &'static str) -> Truth {
    identity_expiring(rng, format, (2027, 2036))
}

/// [`identity`] with the expiry year drawn from `expiry_years` (a past range gives an expired
/// document).
pub fn identity_expiring(rng: &mut Rng, format: &'static str, expiry_years: (u32, u32)) -> Truth {
    let surname = pick(rng, SURNAMES).to_owned();
    let given = pick(rng, GIVEN).to_owned();
    let state = pick(rng, STATES);
    let st = pad(state, 3);
    let number = alnum(rng, 9);
    let (birth, birth_iso) = yymmdd(rng, 1950, 2005);
    let (expiry, expiry_iso) = yymmdd(rng, expiry_years.0, expiry_years.1);
    let sex = if rng.chance(0.5) { 'F' } else { 'M' };
    let nc = check_digit(&number);
    let bc = check_digit(&birth);
    let ec = check_digit(&expiry);
    let mrz = match format {
        "TD3" => {
            let personal = pad("", 14);
            let pc = '<';
            let l2a = format!("{number}{nc}{st}{birth}{bc}{sex}{expiry}{ec}{personal}{pc}");
            let comp = format!("{number}{nc}{birth}{bc}{expiry}{ec}{personal}{pc}");
            vec![
                format!("P<{st}{}", name_field(&surname, &given, 39)),
                format!("{l2a}{}", check_digit(&comp)),
            ]
        }
        "TD2" => {
            let opt = pad("", 7);
            let comp = format!("{number}{nc}{birth}{bc}{expiry}{ec}{opt}");
            vec![
                format!("I<{st}{}", name_field(&surname, &given, 31)),
                format!(
                    "{number}{nc}{st}{birth}{bc}{sex}{expiry}{ec}{opt}{}",
                    check_digit(&comp)
                ),
            ]
        }
        _ => {
            let opt1 = pad("", 15);
            let opt2 = pad("", 11);
            let l1 = format!("I<{st}{number}{nc}{opt1}");
            let l2a = format!("{birth}{bc}{sex}{expiry}{ec}{st}{opt2}");
            let comp = format!(
                "{}{}{}{}",
                &l1[5..30],
                &l2a[0..7],
                &l2a[8..15],
                &l2a[18..29]
            );
            vec![
                l1,
                format!("{l2a}{}", check_digit(&comp)),
                name_field(&surname, &given, 30),
            ]
        }
    };
    let nationality = kycd::document::countries::lookup(state)
        .map(|c| c.alpha3.to_owned())
        .unwrap_or_else(|| state.to_owned());
    Truth {
        format,
        mrz,
        surname,
        given_names: given,
        document_number: number,
        birth_date: birth_iso,
        expiry_date: expiry_iso,
        nationality,
        sex,
    }
}

fn font() -> FontRef<'static> {
    static BYTES: &[u8] = include_bytes!("../fixtures/fonts/OCRB.otf");
    FontRef::try_from_slice(BYTES).expect("OCR-B parses")
}

/// Draws `text` with its top-left at (x, y), `px` high; monospace advance `pitch` when given.
fn draw(img: &mut RgbImage, text: &str, x: f32, y: f32, px: f32, pitch: Option<f32>, ink: [u8; 3]) {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(px));
    let mut caret = x;
    for c in text.chars() {
        let glyph = scaled.scaled_glyph(c);
        let advance = pitch.unwrap_or_else(|| scaled.h_advance(glyph.id));
        let glyph = glyph.id.with_scale_and_position(
            PxScale::from(px),
            ab_glyph::point(caret, y + scaled.ascent()),
        );
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                let (px_, py_) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                if px_ >= 0 && py_ >= 0 && (px_ as u32) < img.width() && (py_ as u32) < img.height()
                {
                    let p = img.get_pixel_mut(px_ as u32, py_ as u32);
                    for (v, i) in p.0.iter_mut().zip(ink) {
                        *v = (f32::from(*v) * (1.0 - cov) + f32::from(i) * cov) as u8;
                    }
                }
            });
        }
        caret += advance;
    }
}

/// Renders the document page for `t`, with `portrait` on it, then photographs it.
pub fn render(t: &Truth, portrait: &RgbImage, rng: &mut Rng) -> RgbImage {
    let page = page(t, portrait, rng);
    photograph(&page, rng)
}

/// The page [`render`] photographs, flat and square to the camera.
pub fn page(t: &Truth, portrait: &RgbImage, rng: &mut Rng) -> RgbImage {
    let (w, h, mrz_px) = match t.format {
        "TD3" => (1250u32, 880u32, 38.0f32),
        "TD2" => (1060, 745, 40.0),
        _ => (1030, 650, 44.0),
    };
    let tint = [
        rng.range(225.0, 245.0),
        rng.range(228.0, 246.0),
        rng.range(215.0, 240.0),
    ];
    let mut page = RgbImage::from_fn(w, h, |x, y| {
        // A faint guilloche-like wave, as security backgrounds have.
        let wave = 6.0 * ((x as f32 * 0.05).sin() * (y as f32 * 0.07).cos());
        Rgb(tint.map(|v| (v + wave).clamp(0.0, 255.0) as u8))
    });
    // Portrait on the left third.
    let ph = (h as f32 * 0.5) as u32;
    let pw = (ph as f32 * 0.78) as u32;
    let face = image::imageops::resize(portrait, pw, ph, image::imageops::FilterType::Triangle);
    image::imageops::overlay(&mut page, &face, i64::from(w / 24), i64::from(h / 6));
    let ink = [30, 30, 45];
    let x0 = (w / 24 + pw + w / 24) as f32;
    let title = if t.format == "TD3" {
        "PASSPORT / PASSEPORT"
    } else {
        "IDENTITY CARD / CARTE D'IDENTITE"
    };
    draw(&mut page, title, x0, h as f32 * 0.05, 30.0, None, ink);
    let fields = [
        ("Surname / Nom", t.surname.clone()),
        ("Given names / Prenoms", t.given_names.clone()),
        ("Nationality / Nationalite", t.nationality.clone()),
        ("Document No.", t.document_number.clone()),
    ];
    let mut y = h as f32 * 0.16;
    for (label, value) in fields {
        draw(&mut page, label, x0, y, 18.0, None, [90, 90, 110]);
        draw(&mut page, &value, x0, y + 22.0, 28.0, None, ink);
        y += 66.0;
    }
    // MRZ at the bottom: ICAO pitch is about 0.83 of the glyph height in OCR-B.
    let pitch = mrz_px * 0.72;
    let lines = t.mrz.len() as f32;
    let line_gap = mrz_px * 1.45;
    let mut my = h as f32 - lines * line_gap - mrz_px * 0.4;
    let mx = (w as f32 - pitch * t.mrz[0].len() as f32) / 2.0;
    for line in &t.mrz {
        draw(&mut page, line, mx, my, mrz_px, Some(pitch), [10, 10, 10]);
        my += line_gap;
    }
    page
}

/// `page` lying on a dark desk of `size` pixels with its corners at `corners` (top-left,
/// top-right, bottom-right, bottom-left): a card photographed at an angle, bilinear and JPEG.
pub fn on_desk(page: &RgbImage, corners: [[f32; 2]; 4], size: (u32, u32)) -> RgbImage {
    use imageproc::geometric_transformations::{warp_into, Border, Interpolation, Projection};
    let (w, h) = (page.width() as f32, page.height() as f32);
    let flat = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let projection = Projection::from_control_points(flat, corners.map(|[x, y]| (x, y))).unwrap();
    let mut on_card = RgbImage::new(size.0, size.1);
    warp_into(
        page,
        projection,
        Interpolation::Bilinear,
        Border::Constant(Rgb([0, 0, 0])),
        &mut on_card,
    );
    // Where the page is not, a dark desk's weave.
    let back = projection.invert();
    let photo = RgbImage::from_fn(size.0, size.1, |x, y| {
        let (sx, sy) = back * (x as f32, y as f32);
        if sx < 0.0 || sy < 0.0 || sx > w - 1.0 || sy > h - 1.0 {
            let v = 50 + ((x / 7 + y / 5) % 3) as u8 * 6;
            Rgb([v + 12, v + 4, v])
        } else {
            *on_card.get_pixel(x, y)
        }
    });
    let jpeg = kycd::media::intake::encode_jpeg(&photo, 88);
    image::load_from_memory(&jpeg).unwrap().to_rgb8()
}

/// A North-American driving licence: what it prints and what its PDF417 (AAMVA) carries.
#[derive(Debug, Clone)]
pub struct Licence {
    pub surname: String,
    pub first_name: String,
    pub middle_name: String,
    pub number: String,
    /// Dates as ISO 8601.
    pub birth_date: String,
    pub expiry_date: String,
    pub issue_date: String,
    pub sex: char,
}

/// A random California licence.
pub fn licence(rng: &mut Rng) -> Licence {
    let date = |rng: &mut Rng, y0: u32, y1: u32| yymmdd(rng, y0, y1).1;
    Licence {
        surname: pick(rng, SURNAMES).to_owned(),
        first_name: pick(rng, &["JOHN", "ERIKA", "LUCIA", "MARCO", "CLAIRE"]).to_owned(),
        middle_name: pick(rng, &["QUINCY", "ROSE", "ALAN", "MAE"]).to_owned(),
        number: format!("D{:07}", rng.next_u64() % 10_000_000),
        birth_date: date(rng, 1950, 2005),
        expiry_date: date(rng, 2028, 2034),
        issue_date: date(rng, 2019, 2025),
        sex: if rng.chance(0.5) { 'F' } else { 'M' },
    }
}

/// `YYYY-MM-DD` as a licence prints it (`MM/DD/YYYY`) and as AAMVA writes it (`MMDDYYYY`).
fn us_date(iso: &str) -> (String, String) {
    let (y, m, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    (format!("{m}/{d}/{y}"), format!("{m}{d}{y}"))
}

/// The AAMVA (version 10) record of `l`: header, one `DL` designator, the `DL` subfile.
pub fn aamva_record(l: &Licence) -> String {
    let body = [
        format!("DAQ{}", l.number),
        format!("DCS{}", l.surname),
        "DDEN".into(),
        format!("DAC{}", l.first_name),
        "DDFN".into(),
        format!("DAD{}", l.middle_name),
        "DDGN".into(),
        "DCAC".into(),
        "DCBNONE".into(),
        "DCDNONE".into(),
        format!("DBD{}", us_date(&l.issue_date).1),
        format!("DBB{}", us_date(&l.birth_date).1),
        format!("DBA{}", us_date(&l.expiry_date).1),
        format!("DBC{}", if l.sex == 'F' { 2 } else { 1 }),
        "DAU070 IN".into(),
        "DAYBRO".into(),
        "DAG1234 MAIN STREET".into(),
        "DAISACRAMENTO".into(),
        "DAJCA".into(),
        "DAK958140000  ".into(),
        "DCF0123456789012345678".into(),
        "DCGUSA".into(),
    ]
    .join("\n");
    let subfile = format!("DL{body}\r");
    let header = "@\n\u{1e}\rANSI 636014100001";
    let offset = header.len() + 10;
    format!("{header}DL{offset:04}{:04}{subfile}", subfile.len())
}

/// The licence's front (portrait, names, dates, number) and back (the PDF417 of
/// [`aamva_record`]), each photographed upright. `printed_birth_date` replaces the date of birth
/// the front prints (an altered card) when given.
pub fn render_licence(
    l: &Licence,
    portrait: &RgbImage,
    printed_birth_date: Option<&str>,
    rng: &mut Rng,
) -> (RgbImage, RgbImage) {
    let (w, h) = (1100u32, 700u32);
    let mut front = RgbImage::from_fn(w, h, |x, y| {
        let wave = 5.0 * ((x as f32 * 0.04).sin() * (y as f32 * 0.06).cos());
        Rgb([
            (232.0 + wave) as u8,
            (238.0 + wave) as u8,
            (246.0 + wave) as u8,
        ])
    });
    let ph = 330;
    let face = image::imageops::resize(portrait, 260, ph, image::imageops::FilterType::Triangle);
    image::imageops::overlay(&mut front, &face, 50, 190);
    let ink = [25, 30, 60];
    let label = [90, 90, 110];
    draw(
        &mut front,
        "California USA",
        50.0,
        30.0,
        44.0,
        None,
        [150, 30, 30],
    );
    draw(&mut front, "DRIVER LICENSE", 560.0, 40.0, 36.0, None, ink);
    let x0 = 360.0;
    draw(
        &mut front,
        &format!("DLN {}", l.number),
        x0,
        120.0,
        34.0,
        None,
        [160, 20, 20],
    );
    draw(
        &mut front,
        &format!("EXP {}", us_date(&l.expiry_date).0),
        x0,
        175.0,
        30.0,
        None,
        ink,
    );
    draw(&mut front, "Last name", x0, 240.0, 20.0, None, label);
    draw(&mut front, &l.surname, x0, 265.0, 32.0, None, ink);
    draw(&mut front, "First name", x0, 320.0, 20.0, None, label);
    draw(
        &mut front,
        &format!("{} {}", l.first_name, l.middle_name),
        x0,
        345.0,
        32.0,
        None,
        ink,
    );
    draw(&mut front, "Date of birth", x0, 400.0, 20.0, None, label);
    let birth = printed_birth_date.map_or_else(|| us_date(&l.birth_date).0, str::to_owned);
    draw(&mut front, &birth, x0, 425.0, 32.0, None, [160, 20, 20]);
    draw(&mut front, "1234 MAIN STREET", x0, 490.0, 26.0, None, ink);
    draw(
        &mut front,
        "SACRAMENTO, CA 95814",
        x0,
        525.0,
        26.0,
        None,
        ink,
    );
    draw(
        &mut front,
        &format!("SEX {}   CLASS C", l.sex),
        x0,
        580.0,
        26.0,
        None,
        ink,
    );
    draw(
        &mut front,
        &format!("ISS {}", us_date(&l.issue_date).0),
        x0,
        625.0,
        26.0,
        None,
        ink,
    );

    let mut back = RgbImage::from_fn(w, h, |_, _| Rgb([236, 238, 240]));
    let matrix = {
        use rxing::Writer;
        rxing::pdf417::PDF417Writer
            .encode(&aamva_record(l), &rxing::BarcodeFormat::PDF_417, 0, 0)
            .expect("PDF417 encodes")
    };
    // 3 px per module across, 9 px per row (the writer's own rows are already 4 modules tall).
    let (mw, mh) = (matrix.getWidth(), matrix.getHeight());
    let (sx, sy) = (3u32, 2u32);
    let (bx, by) = ((w.saturating_sub(mw * sx)) / 2, 260u32);
    for y in 0..mh * sy {
        for x in 0..mw * sx {
            if matrix.get(x / sx, y / sy) && bx + x < w && by + y < h {
                back.put_pixel(bx + x, by + y, Rgb([15, 15, 15]));
            }
        }
    }
    draw(
        &mut back,
        "RESTRICTIONS: CORR LENS",
        60.0,
        60.0,
        26.0,
        None,
        ink,
    );
    draw(
        &mut back,
        "ENDORSEMENTS: NONE",
        60.0,
        100.0,
        26.0,
        None,
        ink,
    );
    (
        photograph_with(&front, rng, false),
        photograph_with(&back, rng, false),
    )
}

/// Glare, a background margin, tilt and perspective (the camera not square to the page), blur,
/// sometimes a quarter or half turn (30 %: 90°, 180° or 270°), and JPEG.
fn photograph(page: &RgbImage, rng: &mut Rng) -> RgbImage {
    photograph_with(page, rng, true)
}

/// [`photograph`], with the quarter and half turns only when `turns`.
fn photograph_with(page: &RgbImage, rng: &mut Rng, turns: bool) -> RgbImage {
    let (w, h) = page.dimensions();
    // Glare: a soft bright ellipse somewhere on the page.
    let (gx, gy) = (
        rng.range(0.2, 0.8) * w as f32,
        rng.range(0.1, 0.5) * h as f32,
    );
    let strength = rng.range(0.0, 0.35);
    let glared = RgbImage::from_fn(w, h, |x, y| {
        let d = ((x as f32 - gx) / (w as f32 * 0.2)).powi(2)
            + ((y as f32 - gy) / (h as f32 * 0.15)).powi(2);
        let g = strength * (-d).exp();
        let p = page.get_pixel(x, y);
        Rgb(p
            .0
            .map(|v| (f32::from(v) + (255.0 - f32::from(v)) * g) as u8))
    });
    let margin = (w / 12) as i64;
    let bg = [
        rng.range(40.0, 120.0) as u8,
        rng.range(40.0, 120.0) as u8,
        rng.range(40.0, 120.0) as u8,
    ];
    let mut canvas = RgbImage::from_pixel(w + 2 * margin as u32, h + 2 * margin as u32, Rgb(bg));
    image::imageops::overlay(&mut canvas, &glared, margin, margin);
    let angle = rng.range(-4.0, 4.0);
    let rotated = rotate(&canvas, angle, Rgb(bg));
    let slanted = perspective(&rotated, rng, 0.04, Rgb(bg));
    let sigma = rng.range(0.0, 1.2);
    let blurred = if sigma > 0.3 {
        image::imageops::blur(&slanted, sigma)
    } else {
        slanted
    };
    let turn = if turns { rng.range(0.0, 1.0) } else { 1.0 };
    let blurred = if turn < 0.1 {
        image::imageops::rotate90(&blurred)
    } else if turn < 0.2 {
        image::imageops::rotate180(&blurred)
    } else if turn < 0.3 {
        image::imageops::rotate270(&blurred)
    } else {
        blurred
    };
    let q = rng.range(75.0, 95.0) as u8;
    let jpeg = kycd::media::intake::encode_jpeg(&blurred, q);
    image::load_from_memory(&jpeg).unwrap().to_rgb8()
}

/// A homography that moves each corner of the image by up to `amount` of its size: what a
/// camera held off-square does to a flat page.
fn perspective(img: &RgbImage, rng: &mut Rng, amount: f32, fill: Rgb<u8>) -> RgbImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let dst = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
    let src = dst.map(|[x, y]| {
        [
            x + rng.range(-amount, amount) * w,
            y + rng.range(-amount, amount) * h,
        ]
    });
    let m = homography(&dst, &src);
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (x, y) = (x as f32, y as f32);
        let d = m[6] * x + m[7] * y + 1.0;
        let (sx, sy) = (
            (m[0] * x + m[1] * y + m[2]) / d,
            (m[3] * x + m[4] * y + m[5]) / d,
        );
        if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
            return fill;
        }
        *img.get_pixel(sx.round() as u32, sy.round() as u32)
    })
}

/// The 8 coefficients of the homography taking each `from` point to its `to` point (h33 = 1),
/// by Gaussian elimination on the usual 8×8 system.
fn homography(from: &[[f32; 2]; 4], to: &[[f32; 2]; 4]) -> [f32; 8] {
    let mut a = [[0.0f64; 9]; 8];
    for (k, ([x, y], [u, v])) in from.iter().zip(to).enumerate() {
        let (x, y, u, v) = (f64::from(*x), f64::from(*y), f64::from(*u), f64::from(*v));
        a[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = a[row][col] / a[col][col];
                let pivot_row = a[col];
                for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    std::array::from_fn(|i| (a[i][8] / a[i][i]) as f32)
}

fn rotate(img: &RgbImage, deg: f32, fill: Rgb<u8>) -> RgbImage {
    let (w, h) = img.dimensions();
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (c * dx + s * dy + cx, -s * dx + c * dy + cy);
        if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
            return fill;
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |xx: u32, yy: u32| img.get_pixel(xx, yy).0.map(f32::from);
        let (a, b, cc, d) = (p(x0, y0), p(x0 + 1, y0), p(x0, y0 + 1), p(x0 + 1, y0 + 1));
        Rgb(std::array::from_fn(|k| {
            (a[k] * (1.0 - fx) * (1.0 - fy)
                + b[k] * fx * (1.0 - fy)
                + cc[k] * (1.0 - fx) * fy
                + d[k] * fx * fy) as u8
        }))
    })
}
