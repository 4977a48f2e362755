//! A small, strict zip reader for torch archives.
//!
//! In: the bytes of a zip file (usually a memory map). Out: an [`Archive`] listing its records, and for
//! each record its bytes — a zero-copy range of the input for STORED records, an inflated buffer for
//! DEFLATED ones (never more than the declared size: zip bombs are refused).
//!
//! Strictness: the central directory is the only index (a record's method, sizes and CRC come from
//! it); of a record's local header only the name is compared with the central record, its method
//! and sizes are not read. Duplicate names, absolute or `..` names, overlapping records, records past
//! the central directory, encryption and methods other than STORED/DEFLATED are refused. CRC-32 is
//! verified unless it is 0 (torch can be told to write 0): a non-zero wrong CRC is refused, although
//! torch itself does not check CRCs.
//! ZIP64 records (torch writes them for large archives) are understood.

use std::io::Read;
use std::ops::Range;

use super::error::{Error, Result, ZipProblem};

mod sig {
    pub const LOCAL: u32 = 0x0403_4b50;
    pub const CENTRAL: u32 = 0x0201_4b50;
    pub const EOCD: u32 = 0x0605_4b50;
    pub const EOCD64: u32 = 0x0606_4b50;
    pub const EOCD64_LOCATOR: u32 = 0x0706_4b50;
}

const EOCD_LEN: usize = 22;
const EOCD64_LOCATOR_LEN: usize = 20;
const EOCD64_LEN: usize = 56;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;
const ZIP64_EXTRA: u16 = 0x0001;
/// DEFLATE cannot compress better than about 1032:1.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// How a record's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Uncompressed.
    Stored,
    /// DEFLATE.
    Deflated,
}

/// One record of the archive.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its name.
    pub name: String,
    /// How it is stored.
    pub method: Method,
    /// CRC-32 from the central directory (0 means "not recorded").
    pub crc: u32,
    /// Uncompressed size.
    pub size: u64,
    /// The compressed bytes, as a range of the archive.
    pub data: Range<usize>,
    /// Offset of its local header.
    pub local_offset: usize,
}

/// The records of a zip archive, in the order of their local headers in the file.
#[derive(Debug)]
pub struct Archive {
    /// The records, in file order.
    pub records: Vec<Record>,
    by_name: std::collections::HashMap<String, usize>,
}

/// A record's content: a range of the archive (STORED) or a new buffer (DEFLATED).
#[derive(Debug)]
pub enum Content {
    /// Zero-copy: this range of the archive bytes.
    Borrowed(Range<usize>),
    /// Inflated bytes.
    Owned(Vec<u8>),
}

impl Content {
    /// The content's bytes, given the bytes of the archive it came from.
    pub fn bytes<'a>(&'a self, archive: &'a [u8]) -> &'a [u8] {
        match self {
            Content::Borrowed(r) => &archive[r.clone()],
            Content::Owned(v) => v,
        }
    }
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl Cursor<'_> {
    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.b[at], self.b[at + 1]])
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.b[at], self.b[at + 1], self.b[at + 2], self.b[at + 3]])
    }
    fn u64(&self, at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b[at..at + 8]);
        u64::from_le_bytes(a)
    }
}

fn bad(what: impl Into<String>) -> Error {
    Error::BadZip { what: what.into() }
}

fn truncated(what: impl Into<String>, offset: usize) -> Error {
    Error::Truncated {
        entry: "zip archive".into(),
        offset: offset as u64,
        what: what.into(),
    }
}

fn to_usize(v: u64, what: &str, len: usize) -> Result<usize> {
    match usize::try_from(v) {
        Ok(u) if u <= len => Ok(u),
        _ => Err(truncated(
            format!("{what} ({v}) lies past the end of the file"),
            len,
        )),
    }
}

impl Archive {
    /// Parse the central directory of `bytes` and check every record against it.
    pub fn parse(bytes: &[u8]) -> Result<Archive> {
        let c = Cursor { b: bytes };
        let len = bytes.len();
        let eocd = find_eocd(bytes)?;
        let mut entries = u64::from(c.u16(eocd + 10));
        let mut cd_size = u64::from(c.u32(eocd + 12));
        let mut cd_offset = u64::from(c.u32(eocd + 16));
        if entries == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
            let loc = eocd
                .checked_sub(EOCD64_LOCATOR_LEN)
                .filter(|&l| c.u32(l) == sig::EOCD64_LOCATOR)
                .ok_or_else(|| bad("ZIP64 sizes without a ZIP64 end-of-directory locator"))?;
            let at = to_usize(c.u64(loc + 8), "ZIP64 end of central directory", len)?;
            if at + EOCD64_LEN > loc || c.u32(at) != sig::EOCD64 {
                return Err(bad("bad ZIP64 end of central directory"));
            }
            entries = c.u64(at + 32);
            cd_size = c.u64(at + 40);
            cd_offset = c.u64(at + 48);
        }
        let cd_start = to_usize(cd_offset, "central directory", len)?;
        let cd_end = to_usize(
            cd_offset.saturating_add(cd_size),
            "central directory end",
            len,
        )?;
        if cd_end > eocd {
            return Err(bad("central directory overlaps its end record"));
        }
        // Each entry takes at least CENTRAL_LEN bytes: bound the count before allocating.
        if entries > (cd_end - cd_start) as u64 / CENTRAL_LEN as u64 {
            return Err(Error::too_large(format!(
                "zip central directory claims {entries} records in {} bytes",
                cd_end - cd_start
            )));
        }
        let mut records = Vec::with_capacity(entries as usize);
        let mut at = cd_start;
        for _ in 0..entries {
            if at + CENTRAL_LEN > cd_end || c.u32(at) != sig::CENTRAL {
                return Err(bad(format!(
                    "central directory record at byte {at} is damaged"
                )));
            }
            let flags = c.u16(at + 8);
            let method = c.u16(at + 10);
            let crc = c.u32(at + 16);
            let mut csize = u64::from(c.u32(at + 20));
            let mut usize_ = u64::from(c.u32(at + 24));
            let nlen = usize::from(c.u16(at + 28));
            let xlen = usize::from(c.u16(at + 30));
            let clen = usize::from(c.u16(at + 32));
            let mut local = u64::from(c.u32(at + 42));
            let next = at + CENTRAL_LEN + nlen + xlen + clen;
            if next > cd_end {
                return Err(bad(format!(
                    "central directory record at byte {at} runs past the directory"
                )));
            }
            let name_bytes = &bytes[at + CENTRAL_LEN..at + CENTRAL_LEN + nlen];
            let name = String::from_utf8_lossy(name_bytes).into_owned();
            // ZIP64 extra: the 8-byte values present are those whose 4-byte field is saturated.
            let mut x = at + CENTRAL_LEN + nlen;
            let x_end = x + xlen;
            while x + 4 <= x_end {
                let id = c.u16(x);
                let n = usize::from(c.u16(x + 2));
                if x + 4 + n > x_end {
                    return Err(bad(format!("record {name:?} has a damaged extra field")));
                }
                if id == ZIP64_EXTRA {
                    let mut p = x + 4;
                    for field in [&mut usize_, &mut csize, &mut local] {
                        if *field == 0xffff_ffff {
                            if p + 8 > x + 4 + n {
                                return Err(bad(format!(
                                    "record {name:?} has a short ZIP64 field"
                                )));
                            }
                            *field = c.u64(p);
                            p += 8;
                        }
                    }
                }
                x += 4 + n;
            }
            if flags & 1 != 0 {
                return Err(bad(format!("record {name:?} is encrypted")));
            }
            let method = match method {
                0 => Method::Stored,
                8 => Method::Deflated,
                m => return Err(bad(format!("record {name:?} uses compression method {m}; only STORED and DEFLATED are read"))),
            };
            if method == Method::Stored && csize != usize_ {
                return Err(bad(format!(
                    "STORED record {name:?} has compressed size {csize} but size {usize_}"
                )));
            }
            check_name(&name)?;
            let local_offset = to_usize(local, &format!("local header of {name:?}"), len)?;
            if local_offset + LOCAL_LEN > cd_start || c.u32(local_offset) != sig::LOCAL {
                return Err(bad(format!(
                    "record {name:?} has no local header at byte {local_offset}"
                )));
            }
            let lnlen = usize::from(c.u16(local_offset + 26));
            let lxlen = usize::from(c.u16(local_offset + 28));
            let data_start = local_offset + LOCAL_LEN + lnlen + lxlen;
            if data_start > cd_start
                || bytes[local_offset + LOCAL_LEN..local_offset + LOCAL_LEN + lnlen] != *name_bytes
            {
                return Err(bad(format!(
                    "local header of {name:?} at byte {local_offset} does not match the central directory"
                )));
            }
            let data_end = (data_start as u64).checked_add(csize).filter(|&e| e <= cd_start as u64).ok_or_else(|| {
                truncated(format!("record {name:?} ({csize} bytes at byte {data_start}) runs past the records area"), len)
            })? as usize;
            records.push(Record {
                name,
                method,
                crc,
                size: usize_,
                data: data_start..data_end,
                local_offset,
            });
            at = next;
        }
        let mut seen = std::collections::HashSet::with_capacity(records.len());
        for r in &records {
            if !seen.insert(r.name.as_str()) {
                return Err(Error::BadZipEntry {
                    problem: ZipProblem::Duplicate,
                    name: r.name.clone(),
                    detail: "two records carry this name".into(),
                });
            }
        }
        records.sort_by_key(|r| r.local_offset);
        for pair in records.windows(2) {
            if pair[0].data.end > pair[1].local_offset {
                return Err(Error::BadZipEntry {
                    problem: ZipProblem::Overlap,
                    name: pair[1].name.clone(),
                    detail: format!(
                        "its header at byte {} lies inside record {:?}",
                        pair[1].local_offset, pair[0].name
                    ),
                });
            }
        }
        let by_name = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Ok(Archive { records, by_name })
    }

    /// The record called `name`.
    pub fn find(&self, name: &str) -> Option<&Record> {
        self.by_name.get(name).map(|&i| &self.records[i])
    }

    /// The uncompressed content of `record`, CRC-checked.
    pub fn read(&self, bytes: &[u8], record: &Record) -> Result<Content> {
        let raw = &bytes[record.data.clone()];
        let content = match record.method {
            Method::Stored => Content::Borrowed(record.data.clone()),
            Method::Deflated => Content::Owned(inflate(raw, record)?),
        };
        if record.crc != 0 {
            let data = content.bytes(bytes);
            let mut crc = flate2::Crc::new();
            crc.update(data);
            if crc.sum() != record.crc {
                return Err(bad(format!(
                    "record {:?} fails its CRC-32 check (recorded {:08x}, computed {:08x})",
                    record.name,
                    record.crc,
                    crc.sum()
                )));
            }
        }
        Ok(content)
    }
}

fn check_name(name: &str) -> Result<()> {
    let dotdot = name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.split('/').any(|part| part == "..");
    if dotdot {
        return Err(Error::BadZipEntry {
            problem: ZipProblem::DotDot,
            name: name.to_owned(),
            detail: "names must be relative and stay inside the archive".into(),
        });
    }
    Ok(())
}

fn find_eocd(bytes: &[u8]) -> Result<usize> {
    let c = Cursor { b: bytes };
    if bytes.len() >= EOCD_LEN {
        let last = bytes.len() - EOCD_LEN;
        let first = last.saturating_sub(u16::MAX as usize);
        for at in (first..=last).rev() {
            if c.u32(at) == sig::EOCD && at + EOCD_LEN + usize::from(c.u16(at + 20)) == bytes.len()
            {
                return Ok(at);
            }
        }
    }
    Err(truncated(
        "no end-of-central-directory record (the central directory is missing)",
        bytes.len(),
    ))
}

fn inflate(raw: &[u8], record: &Record) -> Result<Vec<u8>> {
    let bomb = |what: String| Error::ZipBomb {
        entry: record.name.clone(),
        declared_size: record.size,
        what,
    };
    if record.size
        > (raw.len() as u64)
            .saturating_mul(MAX_DEFLATE_RATIO)
            .saturating_add(1024)
    {
        return Err(bomb(format!(
            "{} compressed bytes cannot inflate to the declared size",
            raw.len()
        )));
    }
    let declared =
        usize::try_from(record.size).map_err(|_| bomb("declared size exceeds memory".into()))?;
    // Grow with the real output, reading at most one byte more than declared.
    let mut out = Vec::with_capacity(declared.min(64 << 20));
    flate2::read::DeflateDecoder::new(raw)
        .take(record.size + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("record {:?} does not inflate: {e}", record.name)))?;
    if out.len() as u64 > record.size {
        return Err(bomb("inflates past its declared size".into()));
    }
    if (out.len() as u64) < record.size {
        return Err(bad(format!(
            "record {:?} inflates to {} bytes, {} declared",
            record.name,
            out.len(),
            record.size
        )));
    }
    Ok(out)
}
