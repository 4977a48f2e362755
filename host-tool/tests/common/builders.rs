//! Small builders of synthetic torch files for tests, property tests and fuzz seeds: a pickle writer
//! that emits the opcodes `torch.save` uses, a zip writer (STORED or DEFLATED, real or zero CRC), and
//! the legacy layout. They write what the torch formats specify; the fixtures made by torch itself are
//! the check that the reader agrees with torch.

#![allow(dead_code)]

use std::io::Write;

/// A protocol-2 pickle being written.
pub struct Pickle(pub Vec<u8>);

impl Default for Pickle {
    fn default() -> Self {
        Pickle(vec![0x80, 2])
    }
}

impl Pickle {
    pub fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub fn int(&mut self, v: i64) -> &mut Self {
        if let Ok(small) = i32::try_from(v) {
            self.0.push(b'J');
            self.0.extend_from_slice(&small.to_le_bytes());
        } else {
            self.0.extend_from_slice(&[0x8a, 8]);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        self
    }
    pub fn mark(&mut self) -> &mut Self {
        self.op(b"(")
    }
    pub fn tuple(&mut self) -> &mut Self {
        self.op(b"t")
    }
    pub fn ints_tuple(&mut self, values: &[u64]) -> &mut Self {
        self.mark();
        for &v in values {
            self.int(v as i64);
        }
        self.tuple()
    }
    /// `_rebuild_tensor_v2(pid(storage), offset, size, stride, False, OrderedDict())`.
    pub fn tensor(
        &mut self,
        storage_type: &str,
        key: &str,
        numel: u64,
        offset: u64,
        size: &[u64],
        stride: &[u64],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").mark();
        self.mark()
            .str("storage")
            .global("torch", storage_type)
            .str(key)
            .str("cpu")
            .int(numel as i64)
            .tuple()
            .op(b"Q");
        self.int(offset as i64)
            .ints_tuple(size)
            .ints_tuple(stride)
            .op(b"\x89");
        self.global("collections", "OrderedDict").op(b")R");
        self.tuple().op(b"R")
    }
    pub fn stop(&mut self) -> Vec<u8> {
        self.0.push(b'.');
        std::mem::take(&mut self.0)
    }
}

/// One tensor of a synthetic state_dict.
#[derive(Debug, Clone)]
pub struct SynthTensor {
    pub name: String,
    pub storage_type: &'static str,
    pub elem_size: usize,
    pub key: String,
    pub storage: Vec<u8>,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// The object pickle of an OrderedDict state_dict of `tensors`.
pub fn state_dict_pickle(tensors: &[SynthTensor]) -> Vec<u8> {
    let mut p = Pickle::default();
    p.global("collections", "OrderedDict").op(b")R").mark();
    for t in tensors {
        p.str(&t.name);
        let numel = (t.storage.len() / t.elem_size) as u64;
        p.tensor(t.storage_type, &t.key, numel, t.offset, &t.size, &t.stride);
    }
    p.op(b"u").stop()
}

/// A zip record to write.
pub struct Record {
    pub name: String,
    pub data: Vec<u8>,
    pub deflate: bool,
    pub zero_crc: bool,
}

impl Record {
    pub fn stored(name: &str, data: &[u8]) -> Record {
        Record {
            name: name.to_owned(),
            data: data.to_vec(),
            deflate: false,
            zero_crc: false,
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// A zip archive of `records`, in order.
pub fn zip(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for r in records {
        let payload = if r.deflate {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&r.data).unwrap();
            e.finish().unwrap()
        } else {
            r.data.clone()
        };
        let crc = if r.zero_crc { 0 } else { crc32(&r.data) };
        let method: u16 = if r.deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        let mut header = Vec::new();
        header.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        header.extend_from_slice(&[20, 0, 0, 0]);
        header.extend_from_slice(&method.to_le_bytes());
        header.extend_from_slice(&[0, 0, 0, 0]);
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        header.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
        header.extend_from_slice(&(r.name.len() as u16).to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(r.name.as_bytes());
        out.extend_from_slice(&payload);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0]);
        central.extend_from_slice(&header[4..]);
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(r.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(records.len() as u16).to_le_bytes());
    out.extend_from_slice(&(records.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// A torch zip archive: `<root>/data.pkl`, one `<root>/data/<key>` per storage, `<root>/byteorder`.
pub fn torch_zip(
    root: &str,
    pickle: &[u8],
    storages: &[(String, Vec<u8>)],
    deflate: bool,
) -> Vec<u8> {
    let mut records = vec![Record {
        deflate,
        ..Record::stored(&format!("{root}/data.pkl"), pickle)
    }];
    records.push(Record::stored(&format!("{root}/byteorder"), b"little"));
    for (key, data) in storages {
        records.push(Record {
            deflate,
            ..Record::stored(&format!("{root}/data/{key}"), data)
        });
    }
    records.push(Record::stored(&format!("{root}/version"), b"3\n"));
    zip(&records)
}

/// A legacy-format file: magic, protocol, sys_info, `object`, the key list, then each storage.
pub fn legacy(object: &[u8], storages: &[(String, usize, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
    out.extend_from_slice(b"\x80\x02M\xe9\x03.");
    let mut sys = Pickle::default();
    sys.op(b"}")
        .mark()
        .str("protocol_version")
        .int(1001)
        .str("little_endian")
        .op(b"\x88")
        .op(b"u");
    out.extend_from_slice(&sys.stop());
    out.extend_from_slice(object);
    let mut keys = Pickle::default();
    keys.op(b"]").mark();
    for (k, _, _) in storages {
        keys.str(k);
    }
    keys.op(b"e");
    out.extend_from_slice(&keys.stop());
    for (_, elem_size, data) in storages {
        out.extend_from_slice(&((data.len() / elem_size) as u64).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// The same state_dict as a torch zip archive and as a legacy file.
pub fn both_formats(tensors: &[SynthTensor], deflate: bool) -> (Vec<u8>, Vec<u8>) {
    let pickle = state_dict_pickle(tensors);
    let mut zs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ls: Vec<(String, usize, Vec<u8>)> = Vec::new();
    for t in tensors {
        if !zs.iter().any(|(k, _)| *k == t.key) {
            zs.push((t.key.clone(), t.storage.clone()));
            ls.push((t.key.clone(), t.elem_size, t.storage.clone()));
        }
    }
    (
        torch_zip("archive", &pickle, &zs, deflate),
        legacy(&pickle, &ls),
    )
}

/// Naive reference: the view's elements in row-major order, one index computation per element.
pub fn reference_gather(t: &SynthTensor) -> Vec<u8> {
    let numel: u64 = t.size.iter().product();
    let mut out = Vec::new();
    for flat in 0..numel {
        let mut rem = flat;
        let mut at = t.offset;
        for d in (0..t.size.len()).rev() {
            at += (rem % t.size[d]) * t.stride[d];
            rem /= t.size[d];
        }
        let b = at as usize * t.elem_size;
        out.extend_from_slice(&t.storage[b..b + t.elem_size]);
    }
    out
}
