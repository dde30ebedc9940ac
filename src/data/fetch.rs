//! Getting CIFAR-10 onto disk: download, checksum, extract and verify.
//!
//! This module owns the official file list ([`Manifest`]), the download of
//! `cifar-10-binary.tar.gz` ([`fetch`]) and the check of a folder against the
//! list ([`verify`]). It never leaves files that look valid unless they are:
//! the archive is downloaded to `DIR/.cifar-10-binary.tar.gz.part`, its md5
//! is checked, it is extracted into a hidden temporary folder inside `DIR`,
//! every file is checked against the manifest, and only then are the files
//! renamed into `DIR/cifar-10-batches-bin` (a rename within one filesystem is
//! atomic). An interrupted download keeps its `.part` file, and the next run
//! resumes it with an HTTP `Range` request when the server allows it, or
//! starts over when it does not.
//!
//! The checksums are data, not constants baked into the logic, so tests can
//! run the whole pipeline on an archive built from the repository's sample.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

/// The dataset authors' download of the binary version.
pub const DEFAULT_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

/// The environment variable that overrides [`DEFAULT_URL`], for mirrors.
pub const URL_ENV: &str = "SWEEP_CIFAR10_URL";

/// The folder the archive extracts to, and the one [`fetch`] fills.
pub const BIN_DIR: &str = "cifar-10-batches-bin";

/// The partial download, kept between runs so a rerun can resume it.
pub const PART_FILE: &str = ".cifar-10-binary.tar.gz.part";

/// The prefix of the temporary extraction folders inside the target folder.
const EXTRACT_PREFIX: &str = ".cifar-10-extract-";

pub use super::cifar10::CIFAR10_CLASSES as CLASS_NAMES;

/// A download with no known size stops here, so a misbehaving server cannot
/// fill the disk. The official archive is 170,052,171 bytes.
const MAX_UNKNOWN_DOWNLOAD: u64 = 1 << 30;

/// The largest single file accepted from the archive; an official batch is
/// 30,730,000 bytes.
const MAX_ENTRY_BYTES: u64 = 256 * 1024 * 1024;

/// One file the folder must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// The file name inside `cifar-10-batches-bin/`.
    pub name: String,
    /// The size in bytes.
    pub size: u64,
    /// The md5 digest, lowercase hex.
    pub md5: String,
}

/// What a correct download looks like: the archive's md5 and every file's
/// name, size and md5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The md5 of the whole `.tar.gz`, lowercase hex.
    pub archive_md5: String,
    /// The archive size, when known: it gives the progress bar a total when
    /// the server sends none, and caps how much is downloaded.
    pub archive_size: Option<u64>,
    /// The files checked by size and md5.
    pub files: Vec<ManifestFile>,
    /// A file checked by content instead: it must list [`CLASS_NAMES`], one
    /// per line. The official `batches.meta.txt` is checked this way because
    /// its exact bytes (trailing newlines) are not published anywhere.
    pub class_names_file: Option<String>,
}

impl Manifest {
    /// The official `cifar-10-binary.tar.gz` from the dataset's home page.
    /// Checksums from the CIFAR-10 page and `shared/data/README.md`.
    pub fn cifar10_official() -> Self {
        let batch = |name: &str, md5: &str| ManifestFile {
            name: name.to_string(),
            size: 30_730_000,
            md5: md5.to_string(),
        };
        Self {
            archive_md5: "c32a1d4ab5d03f1284b67883e8d87530".to_string(),
            archive_size: Some(170_052_171),
            files: vec![
                batch("data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"),
                batch("data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"),
                batch("data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"),
                batch("data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"),
                batch("data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"),
                batch("test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d"),
            ],
            class_names_file: Some("batches.meta.txt".to_string()),
        }
    }
}

impl Default for Manifest {
    fn default() -> Self {
        Self::cifar10_official()
    }
}

/// Where to download from, where to put the files, and what they must be.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// An `http://`, `https://` or `file://` URL of the `.tar.gz`.
    pub url: String,
    /// The data folder; the files end up in `dir/cifar-10-batches-bin`.
    pub dir: PathBuf,
    /// The expected checksums.
    pub manifest: Manifest,
}

/// Errors from [`fetch`] and [`verify`]; each names the URL or path and says
/// what to do next. Underlying errors are part of the message (field
/// `cause`) rather than a `source()`, so that the advice comes after the
/// cause and `{:#}` does not print the cause twice.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("could not {action} {}: {cause}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error(
        "unsupported url '{url}': use an http://, https:// or file:// url of cifar-10-binary.tar.gz"
    )]
    BadUrl { url: String },
    #[error("could not reach {url}: {cause}; {}", manual_hint(url, dir))]
    Unreachable {
        url: String,
        dir: PathBuf,
        cause: Box<ureq::Error>,
    },
    #[error("{url} answered HTTP {status}; {}", manual_hint(url, dir))]
    HttpStatus {
        url: String,
        status: u16,
        dir: PathBuf,
    },
    #[error(
        "download from {url} stopped after {got} of {} bytes ({cause}); the partial file \
         {} was kept: rerun the same command to resume",
        expected.map_or("an unknown number of".to_string(), |n| n.to_string()),
        part.display()
    )]
    Interrupted {
        url: String,
        got: u64,
        expected: Option<u64>,
        part: PathBuf,
        cause: io::Error,
    },
    #[error(
        "{url} sent more than {limit} bytes, more than the archive can be; it was deleted. \
         check the url, or {}",
        manual_hint(url, dir)
    )]
    TooLarge {
        url: String,
        limit: u64,
        dir: PathBuf,
    },
    #[error(
        "archive from {url} has md5 {actual}, expected {expected}; it was deleted, so a \
         rerun downloads it again. if it keeps failing, the mirror serves a different file: {}",
        manual_hint(url, dir)
    )]
    ArchiveMd5 {
        url: String,
        expected: String,
        actual: String,
        dir: PathBuf,
    },
    #[error(
        "archive from {url} is not a usable cifar-10-binary.tar.gz: {reason}; {}",
        manual_hint(url, dir)
    )]
    BadArchive {
        url: String,
        reason: String,
        dir: PathBuf,
    },
    #[error(
        "files extracted from {url} do not match the expected checksums, so nothing was \
         installed:\n{report}"
    )]
    ExtractedMismatch { url: String, report: VerifyReport },
    #[error(
        "folder {} does not exist; run `sweep data fetch cifar10 --dir <DIR>` first",
        dir.display()
    )]
    DirNotFound { dir: PathBuf },
}

/// How to install the data without this command, for error messages.
fn manual_hint(url: &str, dir: &Path) -> String {
    format!(
        "to place the files by hand, download {url} (or cifar-10-binary.tar.gz from \
         https://www.cs.toronto.edu/~kriz/cifar.html) on a machine with network access, \
         then either run `sweep data fetch cifar10 --dir {dir} --url file:///path/to/cifar-10-binary.tar.gz` \
         or extract it so that {} holds data_batch_1.bin ... data_batch_5.bin and \
         test_batch.bin, and run `sweep data verify {dir}`",
        dir.join(BIN_DIR).display(),
        dir = dir.display()
    )
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FetchError + 'a {
    move |cause| FetchError::Io {
        action,
        path: path.to_path_buf(),
        cause,
    }
}

/// The state of one file in a [`VerifyReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Ok,
    Missing,
    WrongSize { expected: u64, actual: u64 },
    WrongMd5 { expected: String, actual: String },
    WrongClassNames,
}

/// One checked file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    pub name: String,
    pub status: FileStatus,
}

/// The result of [`verify`]: one entry per manifest file, in manifest order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The folder that was checked (the `cifar-10-batches-bin` folder).
    pub dir: PathBuf,
    pub files: Vec<FileCheck>,
}

impl VerifyReport {
    /// Every file is present and correct.
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(|f| f.status == FileStatus::Ok)
    }

    /// The files that are absent.
    pub fn missing(&self) -> impl Iterator<Item = &FileCheck> {
        self.files
            .iter()
            .filter(|f| f.status == FileStatus::Missing)
    }

    /// The files that are present but not what the manifest says.
    pub fn wrong(&self) -> impl Iterator<Item = &FileCheck> {
        self.files
            .iter()
            .filter(|f| !matches!(f.status, FileStatus::Ok | FileStatus::Missing))
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.files {
            let name = &check.name;
            match &check.status {
                FileStatus::Ok => writeln!(f, "ok       {name}")?,
                FileStatus::Missing => writeln!(f, "missing  {name}")?,
                FileStatus::WrongSize { expected, actual } => writeln!(
                    f,
                    "wrong    {name}: {actual} bytes, expected {expected} (incomplete or a different file)"
                )?,
                FileStatus::WrongMd5 { expected, actual } => {
                    writeln!(f, "wrong    {name}: md5 {actual}, expected {expected}")?
                }
                FileStatus::WrongClassNames => writeln!(
                    f,
                    "wrong    {name}: does not list the ten CIFAR-10 class names"
                )?,
            }
        }
        let ok = self
            .files
            .iter()
            .filter(|c| c.status == FileStatus::Ok)
            .count();
        write!(
            f,
            "{ok} of {} files ok in {}",
            self.files.len(),
            self.dir.display()
        )?;
        if !self.is_ok() {
            // fetch installs into DIR/cifar-10-batches-bin, so suggest DIR.
            let data_dir = match self.dir.file_name() {
                Some(name) if name == BIN_DIR => self.dir.parent().unwrap_or(Path::new(".")),
                _ => &self.dir,
            };
            write!(
                f,
                "; run `sweep data fetch cifar10 --dir {}` to download them again",
                data_dir.display()
            )?;
        }
        Ok(())
    }
}

/// Checks the files in `dir` against `manifest`.
///
/// `dir` may be the data folder (then `dir/cifar-10-batches-bin` is checked
/// if it exists) or the `cifar-10-batches-bin` folder itself. Sizes are
/// compared first, so a wrong-size file is reported without hashing it.
pub fn verify(dir: &Path, manifest: &Manifest) -> Result<VerifyReport, FetchError> {
    if !dir.is_dir() {
        return Err(FetchError::DirNotFound {
            dir: dir.to_path_buf(),
        });
    }
    let nested = dir.join(BIN_DIR);
    let dir = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    let mut files = Vec::new();
    for file in &manifest.files {
        let path = dir.join(&file.name);
        let status = match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => FileStatus::Missing,
            Err(e) => return Err(io_err("read", &path)(e)),
            Ok(meta) if meta.len() != file.size => FileStatus::WrongSize {
                expected: file.size,
                actual: meta.len(),
            },
            Ok(_) => {
                let actual = md5_file(&path)?;
                if actual.eq_ignore_ascii_case(&file.md5) {
                    FileStatus::Ok
                } else {
                    FileStatus::WrongMd5 {
                        expected: file.md5.clone(),
                        actual,
                    }
                }
            }
        };
        files.push(FileCheck {
            name: file.name.clone(),
            status,
        });
    }
    if let Some(name) = &manifest.class_names_file {
        let path = dir.join(name);
        let status = match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => FileStatus::Missing,
            Err(e) => return Err(io_err("read", &path)(e)),
            // The real file is 60 bytes; anything far larger is not it.
            Ok(meta) if meta.len() > 4096 => FileStatus::WrongClassNames,
            Ok(_) => {
                let text = fs::read(&path).map_err(io_err("read", &path))?;
                let text = String::from_utf8_lossy(&text);
                let names: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if names == CLASS_NAMES {
                    FileStatus::Ok
                } else {
                    FileStatus::WrongClassNames
                }
            }
        };
        files.push(FileCheck {
            name: name.clone(),
            status,
        });
    }
    Ok(VerifyReport { dir, files })
}

/// The md5 of a file, as lowercase hex.
pub fn md5_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads, checks and installs the archive described by `opts`.
///
/// Returns `opts.dir/cifar-10-batches-bin`. When that folder already passes
/// [`verify`], nothing is downloaded. `progress` is called with the bytes
/// downloaded so far and the total, if known; a resumed download starts from
/// the bytes already on disk.
pub fn fetch(
    opts: &FetchOptions,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf, FetchError> {
    let dir = &opts.dir;
    let target = dir.join(BIN_DIR);
    fs::create_dir_all(dir).map_err(io_err("create folder", dir))?;
    if target.is_dir() && verify(&target, &opts.manifest)?.is_ok() {
        tracing::info!(dir = %target.display(), "cifar-10 already present and verified");
        return Ok(target);
    }
    remove_stale_extractions(dir);

    let part = dir.join(PART_FILE);
    let mut resumed = download(opts, &part, progress)?;
    loop {
        let actual = md5_file(&part)?;
        if actual.eq_ignore_ascii_case(&opts.manifest.archive_md5) {
            break;
        }
        fs::remove_file(&part).map_err(io_err("delete", &part))?;
        // A .part left by an earlier run may have come from another mirror
        // or a changed file; one fresh download settles whether the source
        // itself is bad.
        if resumed {
            tracing::warn!("resumed download has the wrong md5; downloading from scratch");
            resumed = download(opts, &part, progress)?;
            continue;
        }
        return Err(FetchError::ArchiveMd5 {
            url: opts.url.clone(),
            expected: opts.manifest.archive_md5.clone(),
            actual,
            dir: dir.clone(),
        });
    }

    let staging = tempfile::Builder::new()
        .prefix(EXTRACT_PREFIX)
        .tempdir_in(dir)
        .map_err(io_err("create a temporary folder in", dir))?;
    let extracted = staging.path().join(BIN_DIR);
    // The archive passed its md5, so a rerun would get the same bytes: a
    // failure from here on deletes it instead of keeping it for resuming.
    let checked = extract(&part, &extracted, opts).and_then(|()| {
        let report = verify(&extracted, &opts.manifest)?;
        if report.is_ok() {
            Ok(())
        } else {
            Err(FetchError::ExtractedMismatch {
                url: opts.url.clone(),
                report,
            })
        }
    });
    if let Err(e) = checked {
        fs::remove_file(&part).map_err(io_err("delete", &part))?;
        return Err(e);
    }
    install(&extracted, &target)?;
    fs::remove_file(&part).map_err(io_err("delete", &part))?;
    tracing::info!(dir = %target.display(), "cifar-10 downloaded and verified");
    Ok(target)
}

/// Removes extraction folders left by a run that was killed; they are hidden
/// and ours by name, and never hold the only copy of anything.
fn remove_stale_extractions(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(EXTRACT_PREFIX)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Downloads `opts.url` to `part`, resuming a partial file when possible.
/// Returns whether bytes from an earlier run were kept.
fn download(
    opts: &FetchOptions,
    part: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<bool, FetchError> {
    let url = opts.url.as_str();
    if let Some(path) = url.strip_prefix("file://") {
        copy_local(Path::new(path), part, progress)?;
        return Ok(false);
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::BadUrl {
            url: url.to_string(),
        });
    }
    let known_size = opts.manifest.archive_size;
    let mut have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if known_size.is_some_and(|size| have > size) {
        have = 0;
    }
    if have > 0 && Some(have) == known_size {
        tracing::info!(part = %part.display(), "partial download is complete; checking it");
        progress(have, known_size);
        return Ok(true);
    }

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(Duration::from_secs(15)))
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("sweep/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let unreachable = |e: ureq::Error| FetchError::Unreachable {
        url: url.to_string(),
        dir: opts.dir.clone(),
        cause: Box::new(e),
    };
    let mut response = request.call().map_err(unreachable)?;
    let status = response.status().as_u16();
    let content_length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());

    let start = match status {
        206 if content_range_start(&response) == Some(have) => {
            tracing::info!(bytes = have, "resuming download");
            have
        }
        // A 206 for some other range cannot be appended; start over.
        206 if have > 0 => {
            fs::remove_file(part).map_err(io_err("delete", part))?;
            return download(opts, part, progress).map(|_| false);
        }
        200 => 0,
        // The range starts at or past the end: the partial file is as long
        // as the server's copy, so let the md5 check decide.
        416 if have > 0 => return Ok(true),
        _ => {
            return Err(FetchError::HttpStatus {
                url: url.to_string(),
                status,
                dir: opts.dir.clone(),
            });
        }
    };
    let total = content_length.map(|n| n + start).or(known_size);
    let limit = known_size.unwrap_or(MAX_UNKNOWN_DOWNLOAD);

    let mut file = if start > 0 {
        OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    }
    .map_err(io_err("write", part))?;
    let mut reader = response.body_mut().as_reader();
    let mut got = start;
    let mut buf = vec![0u8; 1 << 16];
    progress(got, total);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(cause) => {
                let _ = file.sync_all();
                return Err(FetchError::Interrupted {
                    url: url.to_string(),
                    got,
                    expected: total,
                    part: part.to_path_buf(),
                    cause,
                });
            }
        };
        got += n as u64;
        if got > limit {
            drop(file);
            fs::remove_file(part).map_err(io_err("delete", part))?;
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit,
                dir: opts.dir.clone(),
            });
        }
        file.write_all(&buf[..n]).map_err(io_err("write", part))?;
        progress(got, total);
    }
    file.sync_all().map_err(io_err("write", part))?;
    if let Some(total) = total.filter(|&t| got < t) {
        return Err(FetchError::Interrupted {
            url: url.to_string(),
            got,
            expected: Some(total),
            part: part.to_path_buf(),
            cause: io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed early"),
        });
    }
    Ok(start > 0)
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header.
fn content_range_start<B>(response: &ureq::http::Response<B>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

fn copy_local(
    source: &Path,
    part: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(), FetchError> {
    let mut input = File::open(source).map_err(io_err("open", source))?;
    let total = input.metadata().ok().map(|m| m.len());
    let mut output = File::create(part).map_err(io_err("write", part))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    progress(got, total);
    loop {
        let n = input.read(&mut buf).map_err(io_err("read", source))?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n]).map_err(io_err("write", part))?;
        got += n as u64;
        progress(got, total);
    }
    output.sync_all().map_err(io_err("write", part))
}

/// Extracts the regular files of `cifar-10-batches-bin/` from the archive
/// into `dest`. Entries are written by name, never by the path the archive
/// gives, so an entry like `../x` or `/etc/x` cannot land outside `dest`;
/// links and other entry types are skipped.
fn extract(archive: &Path, dest: &Path, opts: &FetchOptions) -> Result<(), FetchError> {
    let bad = |reason: String| FetchError::BadArchive {
        url: opts.url.clone(),
        reason,
        dir: opts.dir.clone(),
    };
    fs::create_dir_all(dest).map_err(io_err("create folder", dest))?;
    let file = File::open(archive).map_err(io_err("open", archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("cannot read it as tar.gz ({e})")))?;
    let mut count = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("cannot read it as tar.gz ({e})")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| bad(format!("an entry has an unreadable name ({e})")))?
            .into_owned();
        let parts: Vec<Component> = path.components().collect();
        let name = match parts.as_slice() {
            [Component::Normal(folder), Component::Normal(name)] if *folder == BIN_DIR => {
                name.to_os_string()
            }
            _ => {
                tracing::debug!(entry = %path.display(), "skipping archive entry");
                continue;
            }
        };
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(bad(format!(
                "{} claims {} bytes, more than any CIFAR-10 file",
                path.display(),
                entry.size()
            )));
        }
        let out_path = dest.join(&name);
        let mut out = File::create(&out_path).map_err(io_err("write", &out_path))?;
        io::copy(&mut (&mut entry).take(MAX_ENTRY_BYTES), &mut out)
            .map_err(|e| bad(format!("{} cannot be extracted ({e})", path.display())))?;
        out.sync_all().map_err(io_err("write", &out_path))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad(format!("it has no {BIN_DIR}/ folder")));
    }
    Ok(())
}

/// Moves verified files into `target`. A missing target gets the whole
/// folder in one rename; an existing one (for example with a corrupt file)
/// gets each file renamed over the old one, so every file present at any
/// moment is either the old file or a verified new one.
fn install(extracted: &Path, target: &Path) -> Result<(), FetchError> {
    if !target.exists() {
        return fs::rename(extracted, target).map_err(io_err("move files into", target));
    }
    let entries = fs::read_dir(extracted).map_err(io_err("read", extracted))?;
    for entry in entries {
        let entry = entry.map_err(io_err("read", extracted))?;
        let dest = target.join(entry.file_name());
        fs::rename(entry.path(), &dest).map_err(io_err("move file to", &dest))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> ManifestFile {
        fs::write(dir.join(name), bytes).unwrap();
        ManifestFile {
            name: name.to_string(),
            size: bytes.len() as u64,
            md5: hex(&Md5::digest(bytes)),
        }
    }

    #[test]
    fn md5_of_known_strings() {
        // RFC 1321, appendix A.5.
        assert_eq!(hex(&Md5::digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(&Md5::digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn verify_reports_each_kind_of_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(BIN_DIR);
        fs::create_dir(&dir).unwrap();
        let good = write(&dir, "good.bin", b"good contents");
        let mut short = write(&dir, "short.bin", b"short");
        short.size = 100;
        let mut changed = write(&dir, "changed.bin", b"changed");
        changed.md5 = "00000000000000000000000000000000".to_string();
        let missing = ManifestFile {
            name: "missing.bin".to_string(),
            size: 1,
            md5: String::new(),
        };
        fs::write(
            dir.join("batches.meta.txt"),
            CLASS_NAMES.join("\n") + "\n\n",
        )
        .unwrap();
        let manifest = Manifest {
            archive_md5: String::new(),
            archive_size: None,
            files: vec![good, short, changed, missing],
            class_names_file: Some("batches.meta.txt".to_string()),
        };
        // The data folder and the batches folder itself are both accepted.
        let report = verify(tmp.path(), &manifest).unwrap();
        assert_eq!(report, verify(&dir, &manifest).unwrap());
        let statuses: Vec<&FileStatus> = report.files.iter().map(|f| &f.status).collect();
        assert_eq!(statuses[0], &FileStatus::Ok);
        assert_eq!(
            statuses[1],
            &FileStatus::WrongSize {
                expected: 100,
                actual: 5
            }
        );
        assert!(matches!(statuses[2], FileStatus::WrongMd5 { .. }));
        assert_eq!(statuses[3], &FileStatus::Missing);
        assert_eq!(statuses[4], &FileStatus::Ok);
        assert!(!report.is_ok());
        assert_eq!(report.missing().count(), 1);
        assert_eq!(report.wrong().count(), 2);
        let text = report.to_string();
        assert!(text.contains("missing  missing.bin"), "{text}");
        assert!(text.contains("short.bin: 5 bytes, expected 100"), "{text}");
        assert!(text.contains("2 of 5 files ok"), "{text}");
    }

    #[test]
    fn class_names_file_with_other_names_is_wrong() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("meta.txt"), "cat\ndog\n").unwrap();
        let manifest = Manifest {
            archive_md5: String::new(),
            archive_size: None,
            files: vec![],
            class_names_file: Some("meta.txt".to_string()),
        };
        let report = verify(tmp.path(), &manifest).unwrap();
        assert_eq!(report.files[0].status, FileStatus::WrongClassNames);
    }

    #[test]
    fn verify_of_a_missing_folder_says_to_fetch() {
        let err = verify(
            Path::new("/nonexistent/data"),
            &Manifest::cifar10_official(),
        )
        .unwrap_err();
        assert!(matches!(err, FetchError::DirNotFound { .. }));
        assert!(
            err.to_string().contains("sweep data fetch cifar10"),
            "{err}"
        );
    }

    #[test]
    fn official_manifest_matches_the_shared_real_files() {
        // Every official file present in shared/data must verify (which checks the sizes
        // and md5s typed above), and the ones the tests read must be there.
        let Some(shared) = crate::testing::shared_cifar10() else {
            return;
        };
        let report = verify(&shared, &Manifest::cifar10_official()).unwrap();
        assert_eq!(report.wrong().count(), 0, "{report}");
        let ok: Vec<&str> = report
            .files
            .iter()
            .filter(|f| f.status == FileStatus::Ok)
            .map(|f| f.name.as_str())
            .collect();
        for needed in [
            "data_batch_1.bin",
            "data_batch_2.bin",
            "test_batch.bin",
            "batches.meta.txt",
        ] {
            assert!(ok.contains(&needed), "{needed} does not verify: {report}");
        }
    }

    #[test]
    fn content_range_parsing() {
        let response = ureq::http::Response::builder()
            .header("Content-Range", "bytes 100-199/200")
            .body(())
            .unwrap();
        assert_eq!(content_range_start(&response), Some(100));
    }

    #[test]
    fn unsupported_url_scheme_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = FetchOptions {
            url: "ftp://example.invalid/cifar.tar.gz".to_string(),
            dir: tmp.path().to_path_buf(),
            manifest: Manifest::cifar10_official(),
        };
        let err = fetch(&opts, &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, FetchError::BadUrl { .. }), "{err}");
        assert!(err.to_string().contains("ftp://example.invalid"), "{err}");
    }
}
