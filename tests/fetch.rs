//! `fetch` and `verify` end to end, against an HTTP server on 127.0.0.1
//! started by each test and an archive built from `data/cifar10-sample/`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use sweep::data::fetch::{self, FetchError, FetchOptions, FileStatus, Manifest, ManifestFile};

const SAMPLE_FILES: [&str; 4] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "test_batch.bin",
    "batches.meta.txt",
];

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cifar10-sample")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tar.gz laid out like the official one, holding the sample files, plus
/// a `readme.html` as the official archive has.
fn build_archive(extra: impl FnOnce(&mut tar::Builder<GzEncoder<Vec<u8>>>)) -> Vec<u8> {
    // Stored (level 0) deflate blocks keep the debug-build tests fast; the
    // result is still a gzip stream that has to be decoded.
    let gz = GzEncoder::new(Vec::new(), Compression::none());
    let mut builder = tar::Builder::new(gz);
    for name in SAMPLE_FILES {
        builder
            .append_path_with_name(
                sample_dir().join(name),
                format!("cifar-10-batches-bin/{name}"),
            )
            .unwrap();
    }
    let readme = b"<html>test archive</html>";
    let mut header = tar::Header::new_gnu();
    header.set_size(readme.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "cifar-10-batches-bin/readme.html", &readme[..])
        .unwrap();
    extra(&mut builder);
    builder.into_inner().unwrap().finish().unwrap()
}

fn archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| build_archive(|_| {}))
}

/// The sample's checksums, as listed in data/cifar10-sample/README.md.
fn sample_manifest(archive: &[u8]) -> Manifest {
    let file = |name: &str, md5: &str| ManifestFile {
        name: name.to_string(),
        size: 3_073_000,
        md5: md5.to_string(),
    };
    Manifest {
        archive_md5: hex(&Md5::digest(archive)),
        archive_size: Some(archive.len() as u64),
        files: vec![
            file("data_batch_1.bin", "6672568c6f9da0ae2d58cd800deb0f83"),
            file("data_batch_2.bin", "729f8b191e2ef03c65ccd3e59891ad36"),
            file("test_batch.bin", "371f65da31ad652f5e24b3699a3e6515"),
        ],
        class_names_file: Some("batches.meta.txt".to_string()),
    }
}

#[derive(Clone)]
enum Mode {
    /// Serve the body; honour `Range: bytes=N-` when `ranges` is set.
    Serve { body: Arc<Vec<u8>>, ranges: bool },
    /// Announce the full length, send only `cut` bytes, then close.
    Truncate { body: Arc<Vec<u8>>, cut: usize },
    /// Answer with this status and a short body.
    Status(u16),
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 that answers every request with
/// `mode` and records the request heads. It stops when dropped, or by itself
/// after 60 seconds.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!(
            "http://{}/cifar-10-binary.tar.gz",
            listener.local_addr().unwrap()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (Arc::clone(&requests), Arc::clone(&stop));
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = handle(stream, &mode, &log);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            url,
            requests,
            stop,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn handle(mut stream: TcpStream, mode: &Mode, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    log.lock().unwrap().push(head.clone());
    let range_start = head
        .lines()
        .find_map(|l| l.strip_prefix("range: bytes="))
        .and_then(|r| r.trim().trim_end_matches('-').parse::<usize>().ok());
    match mode {
        Mode::Serve { body, ranges } => match range_start.filter(|_| *ranges) {
            Some(start) if start >= body.len() => write!(
                stream,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            )?,
            Some(start) => {
                write!(
                    stream,
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len() - 1,
                    body.len(),
                    body.len() - start
                )?;
                stream.write_all(&body[start..])?;
            }
            None => {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )?;
                stream.write_all(body)?;
            }
        },
        Mode::Truncate { body, cut } => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body[..*cut])?;
        }
        Mode::Status(code) => write!(
            stream,
            "HTTP/1.1 {code} Oops\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops"
        )?,
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

fn serve(ranges: bool) -> Server {
    Server::start(Mode::Serve {
        body: Arc::new(archive().to_vec()),
        ranges,
    })
}

fn options(url: &str, dir: &Path) -> FetchOptions {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    FetchOptions {
        url: url.to_string(),
        dir: dir.to_path_buf(),
        manifest: MANIFEST.get_or_init(|| sample_manifest(archive())).clone(),
    }
}

/// Runs `fetch` and records every progress call.
type ProgressCalls = Vec<(u64, Option<u64>)>;

fn run(opts: &FetchOptions) -> (Result<PathBuf, FetchError>, ProgressCalls) {
    let mut calls = Vec::new();
    let result = fetch::fetch(opts, &mut |done, total| calls.push((done, total)));
    (result, calls)
}

/// The names in `dir`, sorted, to check what a failed run left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_installed(dir: &Path) {
    let bin = dir.join("cifar-10-batches-bin");
    for name in SAMPLE_FILES {
        let got = std::fs::read(bin.join(name)).unwrap();
        let want = std::fs::read(sample_dir().join(name)).unwrap();
        assert!(got == want, "{name} differs from the sample");
    }
    assert_eq!(listing(dir), ["cifar-10-batches-bin"]);
}

fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/cifar-10-binary.tar.gz")
}

#[test]
fn good_archive_is_downloaded_verified_and_installed() {
    let server = serve(true);
    let tmp = tempfile::tempdir().unwrap();
    let (result, calls) = run(&options(&server.url, tmp.path()));
    let bin = result.unwrap();
    assert_eq!(bin, tmp.path().join("cifar-10-batches-bin"));
    assert_installed(tmp.path());
    assert!(bin.join("readme.html").is_file());
    let len = archive().len() as u64;
    assert_eq!(calls.last(), Some(&(len, Some(len))));
    assert!(
        calls.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress went back"
    );
    assert!(
        fetch::verify(tmp.path(), &sample_manifest(archive()))
            .unwrap()
            .is_ok()
    );
}

#[test]
fn verified_install_is_not_downloaded_again() {
    let server = serve(true);
    let tmp = tempfile::tempdir().unwrap();
    run(&options(&server.url, tmp.path())).0.unwrap();
    assert_eq!(server.requests().len(), 1);
    // With no server at all, an already verified folder is still fine.
    run(&options(&closed_port_url(), tmp.path())).0.unwrap();
    assert_installed(tmp.path());
}

#[test]
fn wrong_archive_checksum_leaves_nothing() {
    let server = serve(true);
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url, tmp.path());
    opts.manifest.archive_md5 = "0123456789abcdef0123456789abcdef".to_string();
    let err = run(&opts).0.unwrap_err();
    assert!(matches!(err, FetchError::ArchiveMd5 { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("expected 0123456789abcdef0123456789abcdef"),
        "{text}"
    );
    assert!(text.contains(&hex(&Md5::digest(archive()))), "{text}");
    assert!(text.contains(&server.url), "{text}");
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn wrong_file_checksum_leaves_nothing() {
    let server = serve(true);
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url, tmp.path());
    opts.manifest.files[1].md5 = "0123456789abcdef0123456789abcdef".to_string();
    let err = run(&opts).0.unwrap_err();
    let FetchError::ExtractedMismatch { report, .. } = &err else {
        panic!("unexpected error: {err}");
    };
    assert_eq!(report.wrong().count(), 1);
    assert_eq!(report.wrong().next().unwrap().name, "data_batch_2.bin");
    assert!(err.to_string().contains("data_batch_2.bin"), "{err}");
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn truncated_download_keeps_only_the_part_file_and_resumes() {
    let body = Arc::new(archive().to_vec());
    let cut = body.len() / 2;
    let tmp = tempfile::tempdir().unwrap();
    {
        let server = Server::start(Mode::Truncate { body, cut });
        let err = run(&options(&server.url, tmp.path())).0.unwrap_err();
        assert!(matches!(err, FetchError::Interrupted { .. }), "{err}");
        assert!(err.to_string().contains("rerun"), "{err}");
    }
    assert_eq!(listing(tmp.path()), [".cifar-10-binary.tar.gz.part"]);
    let part_len = std::fs::metadata(tmp.path().join(".cifar-10-binary.tar.gz.part"))
        .unwrap()
        .len();
    assert_eq!(part_len, cut as u64);

    let server = serve(true);
    let (result, calls) = run(&options(&server.url, tmp.path()));
    result.unwrap();
    assert_installed(tmp.path());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].contains(&format!("range: bytes={cut}-")),
        "{}",
        requests[0]
    );
    assert_eq!(calls.first().map(|c| c.0), Some(cut as u64));
}

#[test]
fn server_without_range_support_restarts_the_download() {
    let tmp = tempfile::tempdir().unwrap();
    let half = &archive()[..archive().len() / 2];
    std::fs::write(tmp.path().join(".cifar-10-binary.tar.gz.part"), half).unwrap();
    let server = serve(false);
    run(&options(&server.url, tmp.path())).0.unwrap();
    assert_installed(tmp.path());
}

#[test]
fn stale_part_file_with_other_bytes_is_discarded_and_downloaded_again() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = vec![0xAB; archive().len() / 3];
    std::fs::write(tmp.path().join(".cifar-10-binary.tar.gz.part"), &garbage).unwrap();
    let server = serve(true);
    run(&options(&server.url, tmp.path())).0.unwrap();
    assert_installed(tmp.path());
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].contains("range: bytes="));
    assert!(!requests[1].contains("range:"));
}

#[test]
fn server_error_leaves_nothing_and_says_how_to_place_files_by_hand() {
    let server = Server::start(Mode::Status(500));
    let tmp = tempfile::tempdir().unwrap();
    let err = run(&options(&server.url, tmp.path())).0.unwrap_err();
    assert!(
        matches!(err, FetchError::HttpStatus { status: 500, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&server.url), "{text}");
    assert!(text.contains("sweep data verify"), "{text}");
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn connection_refused_fails_with_offline_instructions() {
    let tmp = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let err = run(&options(&url, tmp.path())).0.unwrap_err();
    assert!(matches!(err, FetchError::Unreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("by hand"), "{text}");
    assert!(
        text.contains(
            &tmp.path()
                .join("cifar-10-batches-bin")
                .display()
                .to_string()
        ),
        "{text}"
    );
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn corrupt_installed_file_is_replaced_by_a_verified_one() {
    let server = serve(true);
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(&server.url, tmp.path());
    run(&opts).0.unwrap();
    let victim = tmp.path().join("cifar-10-batches-bin/test_batch.bin");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1000] ^= 0xFF;
    std::fs::write(&victim, &bytes).unwrap();
    std::fs::remove_file(tmp.path().join("cifar-10-batches-bin/data_batch_1.bin")).unwrap();

    let report = fetch::verify(tmp.path(), &opts.manifest).unwrap();
    let statuses: Vec<(&str, &FileStatus)> = report
        .files
        .iter()
        .map(|f| (f.name.as_str(), &f.status))
        .collect();
    assert_eq!(statuses[0], ("data_batch_1.bin", &FileStatus::Missing));
    assert!(matches!(
        statuses[2],
        ("test_batch.bin", FileStatus::WrongMd5 { .. })
    ));

    run(&opts).0.unwrap();
    assert_installed(tmp.path());
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn archive_entries_outside_the_folder_are_not_written() {
    let evil = build_archive(|builder| {
        let payload = b"should not be written";
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..13].copy_from_slice(b"../escape.bin");
        header.set_size(payload.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, &payload[..]).unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "cifar-10-batches-bin/link.bin", "/etc/passwd")
            .unwrap();
    });
    let mut names = Vec::new();
    let mut reader = tar::Archive::new(flate2::read::GzDecoder::new(&evil[..]));
    for entry in reader.entries().unwrap() {
        let entry = entry.unwrap();
        names.push(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
    }
    assert!(names.iter().any(|n| n == "../escape.bin"), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("link.bin")), "{names:?}");
    let server = Server::start(Mode::Serve {
        body: Arc::new(evil.clone()),
        ranges: true,
    });
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("data");
    let mut opts = options(&server.url, &dir);
    opts.manifest = sample_manifest(&evil);
    run(&opts).0.unwrap();
    assert!(!outer.path().join("escape.bin").exists());
    assert!(!dir.join("escape.bin").exists());
    assert!(!dir.join("cifar-10-batches-bin/link.bin").exists());
    assert_installed(&dir);
}

#[test]
fn file_url_installs_a_hand_downloaded_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("cifar-10-binary.tar.gz");
    std::fs::write(&local, archive()).unwrap();
    let dir = tmp.path().join("data");
    let url = format!("file://{}", local.display());
    run(&options(&url, &dir)).0.unwrap();
    assert_installed(&dir);
    assert!(local.exists(), "the source archive must be left alone");
}

#[test]
fn garbage_that_matches_its_md5_is_reported_as_a_bad_archive() {
    let body = b"this is not a gzip file".to_vec();
    let server = Server::start(Mode::Serve {
        body: Arc::new(body.clone()),
        ranges: true,
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url, tmp.path());
    opts.manifest.archive_md5 = hex(&Md5::digest(&body));
    opts.manifest.archive_size = None;
    let err = run(&opts).0.unwrap_err();
    assert!(matches!(err, FetchError::BadArchive { .. }), "{err}");
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}
