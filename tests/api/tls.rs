//! `kycd serve --tls-cert --tls-key`: the real binary on loopback, certificates made here with
//! rcgen. TLS 1.2 and 1.3 are accepted, a TLS 1.1 hello is refused in the handshake, every
//! response carries HSTS, SIGHUP swaps the certificate without dropping an open connection, and
//! with `tls.admin_client_ca` the admin API needs a client certificate of that CA.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::common::free_port;

/// A CA and what it signs.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `localhost` named `cn`: (cert PEM, key PEM, cert DER).
fn leaf(ca: &Ca, cn: &str) -> (String, String, CertificateDer<'static>) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

fn client(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<(&str, &str)>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    Arc::new(match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

use rustls::pki_types::pem::PemObject;

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(port: u16, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
        .map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// One keep-alive HTTP/1.1 request: (status, lower-cased head, body).
fn request(tls: &mut Tls, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tls.read(&mut byte).unwrap();
        assert!(
            n > 0,
            "connection closed mid-head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).unwrap();
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn peer(tls: &Tls) -> CertificateDer<'static> {
    tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, env: &[(&str, String)], ready_with: Arc<ClientConfig>) -> Server {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kycd"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .env_remove("KYCD_ADMIN_TOKEN")
        .env_remove("KYCD_DATABASE_URL")
        .env_remove("KYCD_OBJECTS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server {
        child: cmd.spawn().expect("kycd starts"),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut tls) = connect(port, ready_with.clone()) {
            if request(&mut tls, "/readyz", &[]).0 == 200 {
                return server;
            }
        }
        assert!(
            Instant::now() < deadline,
            "kycd never became ready over TLS"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A ClientHello claiming `version` (no supported_versions extension), offering TLS 1.2's
/// ECDHE-ECDSA AES-GCM suites with their groups and signature schemes, and the server's first
/// record back: the same hello is accepted as 0x0303 and refused as 0x0302, so the refusal is
/// the version's alone.
fn hello(port: u16, version: u16) -> Vec<u8> {
    let mut hello = version.to_be_bytes().to_vec();
    hello.extend([0x42; 32]); // random
    hello.push(0); // session id
    hello.extend([0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2c]); // ECDHE-ECDSA-AES128/256-GCM
    hello.extend([0x01, 0x00]); // compression: null
    let extensions = [
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17][..], // x25519, P-256
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00][..],                         // uncompressed points
        &[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04][..], // ECDSA-P256, RSA-PSS
    ]
    .concat();
    hello.extend((extensions.len() as u16).to_be_bytes());
    hello.extend(extensions);
    let mut handshake = vec![0x01, 0, (hello.len() >> 8) as u8, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend(handshake);
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&record).unwrap();
    let mut answer = vec![0u8; 5];
    let _ = tcp.read_exact(&mut answer);
    let mut rest = Vec::new();
    if answer[0] == 0x15 {
        let _ = tcp.read_to_end(&mut rest);
    }
    answer.extend(rest);
    answer
}

#[test]
fn tls_12_and_13_only_hsts_and_a_certificate_swapped_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("kycd test CA");
    let (cert, key, first) = leaf(&ca, "first");
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), key).unwrap();
    let both = client(
        &ca,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        None,
    );
    let server = serve(dir.path(), &[], both.clone());

    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let mut tls = connect(server.port, client(&ca, &[version], None)).unwrap();
        assert_eq!(tls.conn.protocol_version(), Some(expected));
        let (status, head, _) = request(&mut tls, "/healthz", &[]);
        assert_eq!(status, 200, "{head}");
        assert!(
            head.contains("strict-transport-security: max-age=31536000"),
            "{head}"
        );
    }
    // Errors carry it too.
    let mut tls = connect(server.port, both.clone()).unwrap();
    let (status, head, body) = request(&mut tls, "/no/such/route", &[]);
    assert_eq!(status, 404, "{body}");
    assert!(head.contains("strict-transport-security"), "{head}");

    // The same hello: as TLS 1.2 a ServerHello (22 = handshake record) comes back; as TLS 1.1
    // a fatal alert (21 = alert record, level 2) and the connection closes.
    let answer = hello(server.port, 0x0303);
    assert_eq!(answer[0], 0x16, "TLS 1.2 hello not answered: {answer:?}");
    let answer = hello(server.port, 0x0302);
    assert!(answer.len() >= 7, "{answer:?}");
    assert_eq!(
        answer[0], 0x15,
        "TLS 1.1 not refused with an alert: {answer:?}"
    );
    assert_eq!(answer[5], 2, "not a fatal alert: {answer:?}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");

    // An open connection, then a new certificate and SIGHUP.
    let mut open = connect(server.port, both.clone()).unwrap();
    assert_eq!(request(&mut open, "/readyz", &[]).0, 200);
    assert_eq!(peer(&open), first);
    let (cert, key, second) = leaf(&ca, "second");
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), key).unwrap();
    let hup = |pid: u32| {
        let s = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(s.success());
    };
    hup(server.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tls = connect(server.port, both.clone()).unwrap();
        if peer(&tls) == second {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not swap the certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The connection opened before the swap still serves, on its own certificate.
    let (status, _, body) = request(&mut open, "/readyz", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(peer(&open), first);

    // A broken file on SIGHUP: the process lives on with the certificate it had.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    hup(server.child.id());
    std::thread::sleep(Duration::from_millis(500));
    let mut tls = connect(server.port, both).unwrap();
    assert_eq!(peer(&tls), second);
    assert_eq!(request(&mut tls, "/readyz", &[]).0, 200);
}

#[test]
fn the_admin_api_needs_a_client_certificate_of_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("kycd server CA");
    let (cert, key, _) = leaf(&server_ca, "kycd");
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), key).unwrap();
    let admins = ca("kycd operators CA");
    std::fs::write(dir.path().join("admins.pem"), &admins.pem).unwrap();
    let (op_cert, op_key, _) = leaf(&admins, "operator");
    let stranger = ca("someone else");
    let (x_cert, x_key, _) = leaf(&stranger, "intruder");
    let token = "t".repeat(40);
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let anonymous = client(&server_ca, &versions, None);
    let server = serve(
        dir.path(),
        &[
            (
                "KYCD_TLS_ADMIN_CLIENT_CA",
                dir.path().join("admins.pem").display().to_string(),
            ),
            ("KYCD_ADMIN_TOKEN", token.clone()),
        ],
        anonymous.clone(),
    );
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    // Without a client certificate: the public routes serve, the admin API refuses.
    let mut tls = connect(server.port, anonymous).unwrap();
    assert_eq!(request(&mut tls, "/readyz", &[]).0, 200);
    let (status, _, body) = request(&mut tls, "/admin/v1/tenants", &auth);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("client_certificate_required"), "{body}");

    // With the operators' certificate: the token decides, as without mTLS.
    let mut tls = connect(
        server.port,
        client(&server_ca, &versions, Some((&op_cert, &op_key))),
    )
    .unwrap();
    let (status, _, body) = request(&mut tls, "/admin/v1/tenants", &auth);
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = request(
        &mut tls,
        "/admin/v1/tenants",
        &[(
            "Authorization",
            "Bearer wrong-token-wrong-token-wrong-token",
        )],
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_admin_token"), "{body}");

    // A certificate of another CA does not get through the handshake.
    let refused = connect(
        server.port,
        client(&server_ca, &versions, Some((&x_cert, &x_key))),
    )
    .and_then(|mut tls| {
        // TLS 1.3 reports the client certificate's rejection on the first read.
        tls.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut b = [0u8; 1];
        tls.read(&mut b).map(|_| ())
    });
    assert!(refused.is_err(), "a stranger's certificate was accepted");
}
