//! The zip reader's strictness on synthetic archives, for the cases the torch-made fixtures do not
//! isolate: CRC mismatches, methods, encryption, headers that disagree with the central directory.

mod common;

use common::builders::{self, Record, SynthTensor};
use nnblob::checkpoint::{self, Options};

fn one_tensor() -> (Vec<u8>, Vec<u8>) {
    let t = SynthTensor {
        name: "w".into(),
        storage_type: "FloatStorage",
        elem_size: 4,
        key: "0".into(),
        storage: (0u8..16).collect(),
        offset: 0,
        size: vec![4],
        stride: vec![1],
    };
    (
        builders::state_dict_pickle(std::slice::from_ref(&t)),
        t.storage,
    )
}

fn read(bytes: Vec<u8>) -> Result<checkpoint::Checkpoint, checkpoint::Error> {
    checkpoint::from_bytes(bytes, &Options::default())
}

fn archive(records: Vec<Record>) -> Vec<u8> {
    builders::zip(&records)
}

#[test]
fn crc_zero_is_tolerated_and_a_wrong_crc_is_refused() {
    let (pkl, data) = one_tensor();
    let zero = archive(vec![
        Record::stored("a/data.pkl", &pkl),
        Record {
            zero_crc: true,
            ..Record::stored("a/data/0", &data)
        },
    ]);
    assert_eq!(read(zero.clone()).unwrap().tensors[0].bytes(), &data[..]);
    // Flip one byte of the storage: the recorded CRC no longer matches.
    let mut bad = archive(vec![
        Record::stored("a/data.pkl", &pkl),
        Record::stored("a/data/0", &data),
    ]);
    let at = bad.windows(16).position(|w| w == &data[..]).unwrap();
    bad[at] ^= 1;
    let e = read(bad).unwrap_err();
    assert_eq!(e.kind(), "bad-zip");
    assert!(
        e.to_string().contains("a/data/0") && e.to_string().contains("CRC-32"),
        "{e}"
    );
}

#[test]
fn deflated_records_are_read() {
    let (pkl, data) = one_tensor();
    let bytes = archive(vec![
        Record {
            deflate: true,
            ..Record::stored("root/data.pkl", &pkl)
        },
        Record {
            deflate: true,
            ..Record::stored("root/data/0", &data)
        },
    ]);
    assert_eq!(read(bytes).unwrap().tensors[0].bytes(), &data[..]);
}

/// Patch the u16 at `offset` from the start of the first local header and of the first central record.
fn patch_both(bytes: &mut [u8], offset: usize, value: u16) {
    let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
    bytes[central + offset + 2..central + offset + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn encryption_and_unknown_methods_are_refused() {
    let (pkl, data) = one_tensor();
    let good = archive(vec![
        Record::stored("a/data.pkl", &pkl),
        Record::stored("a/data/0", &data),
    ]);
    let mut encrypted = good.clone();
    patch_both(&mut encrypted, 6, 1);
    let e = read(encrypted).unwrap_err();
    assert!(
        e.kind() == "bad-zip" && e.to_string().contains("encrypted"),
        "{e}"
    );
    let mut bzip2 = good;
    patch_both(&mut bzip2, 8, 12);
    let e = read(bzip2).unwrap_err();
    assert!(
        e.kind() == "bad-zip" && e.to_string().contains("method 12"),
        "{e}"
    );
}

#[test]
fn a_local_header_that_disagrees_with_the_directory_is_refused() {
    let (pkl, data) = one_tensor();
    let mut bytes = archive(vec![
        Record::stored("a/data.pkl", &pkl),
        Record::stored("a/data/0", &data),
    ]);
    // Rename the first record in its local header only.
    bytes[30] = b'b';
    let e = read(bytes).unwrap_err();
    assert!(
        e.kind() == "bad-zip" && e.to_string().contains("does not match"),
        "{e}"
    );
}

#[test]
fn only_the_local_header_name_is_compared_the_directory_gives_method_and_sizes() {
    // What docs/CHECKPOINTS.md states: the central directory is the one used; a local header's
    // method and sizes are not read, only its name is compared.
    let (pkl, data) = one_tensor();
    let mut bytes = archive(vec![
        Record::stored("a/data.pkl", &pkl),
        Record::stored("a/data/0", &data),
    ]);
    let local = bytes.windows(8).position(|w| w == b"a/data/0").unwrap() - 30;
    assert_eq!(&bytes[local..local + 4], b"PK\x03\x04");
    bytes[local + 8..local + 10].copy_from_slice(&8u16.to_le_bytes()); // DEFLATED
    bytes[local + 18..local + 26].copy_from_slice(&[0xff; 8]); // both sizes
    assert_eq!(read(bytes).unwrap().tensors[0].bytes(), &data[..]);
}

#[test]
fn a_missing_storage_record_is_named() {
    let (pkl, _) = one_tensor();
    let e = read(archive(vec![Record::stored("a/data.pkl", &pkl)])).unwrap_err();
    assert!(e.to_string().contains("a/data/0 is missing"), "{e}");
}
