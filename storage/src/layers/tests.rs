//! The indexer and the stacking on archives built here, hostile ones too.

use super::*;
use std::io::Write;

/// A tar entry with `name` written as is (no checks: `..` and control
/// characters included).
fn put(
    b: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    ty: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(ty);
    h.set_size(data.len() as u64);
    h.set_mode(if ty == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_mtime(1_700_000_000);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    put(b, name.as_bytes(), tar::EntryType::Regular, data, None);
}

fn dir(b: &mut tar::Builder<Vec<u8>>, name: &str) {
    put(b, name.as_bytes(), tar::EntryType::Directory, b"", None);
}

fn tar_of(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn index(blob: &[u8]) -> Result<LayerIndex, IndexError> {
    index_layer(blob, &Limits::default(), &Progress::default())
}

fn paths(i: &LayerIndex) -> Vec<(String, Kind)> {
    i.entries.iter().map(|e| (e.path.clone(), e.kind)).collect()
}

#[test]
fn a_gzip_layer_lists_files_links_and_deletions() {
    let t = tar_of(|b| {
        dir(b, "etc/");
        file(b, "etc/hostname", b"box\n");
        put(
            b,
            b"etc/alias",
            tar::EntryType::Symlink,
            b"",
            Some("hostname"),
        );
        put(
            b,
            b"etc/hard",
            tar::EntryType::Link,
            b"",
            Some("./etc/hostname"),
        );
        file(b, "opt/.wh..wh..opq", b"");
        file(b, "usr/.wh.lib", b"");
    });
    let i = index(&gzip(&t)).unwrap();
    assert_eq!(i.compression, "gzip");
    assert_eq!(i.tar_bytes, t.len() as u64);
    assert_eq!(
        paths(&i),
        vec![
            ("/etc".into(), Kind::Dir),
            ("/etc/alias".into(), Kind::Symlink),
            ("/etc/hard".into(), Kind::Hardlink),
            ("/etc/hostname".into(), Kind::File),
            ("/opt".into(), Kind::Opaque),
            ("/usr/lib".into(), Kind::Whiteout),
        ]
    );
    let host = &i.entries[3];
    assert_eq!((host.size, host.mode, host.uid), (4, 0o644, 1000));
    assert_eq!(i.entries[1].link.as_deref(), Some("hostname"));
    assert_eq!(i.entries[2].link.as_deref(), Some("/etc/hostname"));
    assert_eq!(i.files(), (1, 4));
}

#[test]
fn zstd_and_plain_tar_are_read_too_whatever_the_media_type() {
    let t = tar_of(|b| file(b, "a", b"12345"));
    let z = zstd::bulk::compress(&t, 3).unwrap();
    assert_eq!(index(&z).unwrap().compression, "zstd");
    let plain = index(&t).unwrap();
    assert_eq!(plain.compression, "none");
    assert_eq!(paths(&plain), vec![("/a".into(), Kind::File)]);
}

#[test]
fn file_digests_are_the_sha256_of_their_content() {
    use sha2::{Digest as _, Sha256};
    let t = tar_of(|b| file(b, "f", b"hello"));
    let i = index(&t).unwrap();
    let want = format!("sha256:{}", hex::encode(Sha256::digest(b"hello")));
    assert_eq!(i.entries[0].digest.as_deref(), Some(want.as_str()));
}

#[test]
fn hostile_names_are_clamped_to_the_root_and_noted() {
    let t = tar_of(|b| {
        file(b, "../../etc/passwd", b"x");
        file(b, "/abs/./x/../y", b"x");
        put(b, b"bad\xff\x1b[31m", tar::EntryType::Regular, b"x", None);
    });
    let i = index(&t).unwrap();
    let by: std::collections::HashMap<_, _> =
        i.entries.iter().map(|e| (e.path.clone(), e)).collect();
    assert!(by["/etc/passwd"]
        .note
        .as_deref()
        .unwrap()
        .contains("climbs out of the root"));
    assert_eq!(by["/abs/y"].note, None);
    let bad = i
        .entries
        .iter()
        .find(|e| e.path.starts_with("/bad"))
        .unwrap();
    assert!(
        bad.path.contains('\u{1b}'),
        "kept as is; escaping is the printer's job"
    );
    assert_eq!(bad.note.as_deref(), Some("its name is not UTF-8"));
}

#[test]
fn limits_refuse_bombs_floods_and_huge_records() {
    let zeros = vec![0u8; 4 << 20];
    let bomb = gzip(&tar_of(|b| file(b, "zeros", &zeros)));
    let small = Limits {
        max_tar_bytes: 1 << 20,
        ..Limits::default()
    };
    let e = index_layer(&bomb[..], &small, &Progress::default()).unwrap_err();
    assert!(
        matches!(e, IndexError::TooLarge(ref m) if m.contains("unpacks to over")),
        "{e}"
    );

    let many = tar_of(|b| (0..50).for_each(|n| file(b, &format!("f{n}"), b"")));
    let few = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let e = index_layer(&many[..], &few, &Progress::default()).unwrap_err();
    assert_eq!(e, IndexError::TooLarge("over 10 entries".into()));

    let long = tar_of(|b| {
        put(
            b,
            b"././@LongLink",
            tar::EntryType::GNULongName,
            &vec![b'a'; 2 << 20],
            None,
        )
    });
    let e = index(&long).unwrap_err();
    assert!(
        matches!(e, IndexError::TooLarge(ref m) if m.contains("extension record")),
        "{e}"
    );

    let slow = Limits {
        max_time: std::time::Duration::ZERO,
        ..Limits::default()
    };
    let e = index_layer(&many[..], &slow, &Progress::default()).unwrap_err();
    assert!(
        matches!(e, IndexError::TooLarge(ref m) if m.contains("took over")),
        "{e}"
    );
}

#[test]
fn a_limit_met_exactly_is_not_over_it() {
    let t = tar_of(|b| file(b, "a", b"1"));
    let exact = Limits {
        max_tar_bytes: t.len() as u64,
        ..Limits::default()
    };
    assert!(index_layer(&t[..], &exact, &Progress::default()).is_ok());
}

#[test]
fn truncated_and_foreign_blobs_are_invalid() {
    let t = gzip(&tar_of(|b| file(b, "a", &[7u8; 100_000])));
    let e = index(&t[..t.len() / 2]).unwrap_err();
    assert!(matches!(e, IndexError::Invalid(_)), "{e}");
    let e = index(b"{\"not\": \"a tar\"} plus enough bytes to fill a block? no").unwrap_err();
    assert!(matches!(e, IndexError::Invalid(_)), "{e}");
}

#[test]
fn gnu_long_names_and_pax_paths_are_used() {
    let long = format!("{}/file", "d".repeat(200));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    let t = b.into_inner().unwrap();
    let i = index(&t).unwrap();
    assert_eq!(i.entries[0].path, format!("/{long}"));

    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", &b"pax/named"[..]), ("uid", &b"4242"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("short").unwrap();
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let i = index(&b.into_inner().unwrap()).unwrap();
    assert_eq!(
        (i.entries[0].path.as_str(), i.entries[0].uid),
        ("/pax/named", 4242)
    );
}

fn layer(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> LayerIndex {
    index(&tar_of(f)).unwrap()
}

#[test]
fn stacking_applies_whiteouts_and_opaque_dirs_and_counts_waste() {
    let base = layer(|b| {
        file(b, "data/big", &[1u8; 1000]);
        file(b, "data/keep", &[2u8; 300]);
        file(b, "opt/dir/a", &[3u8; 50]);
        file(b, "opt/dir/b", &[4u8; 70]);
        file(b, "root/.ssh/id_rsa", b"KEY");
    });
    let top = layer(|b| {
        file(b, "data/big", &[5u8; 400]);
        file(b, "data/.wh.keep", b"");
        dir(b, "opt/dir/");
        file(b, "opt/dir/.wh..wh..opq", b"");
        file(b, "opt/dir/c", &[6u8; 10]);
        file(b, "root/.ssh/.wh.id_rsa", b"");
    });
    let s = stack(&[&base, &top]);
    let live: Vec<&str> = s.nodes.iter().map(|n| n.entry.path.as_str()).collect();
    assert_eq!(live, vec!["/data/big", "/opt/dir", "/opt/dir/c"]);
    assert_eq!(s.nodes[0].layer, 1);
    assert_eq!(s.waste.total_bytes, 1000 + 300 + 50 + 70 + 3 + 400 + 10);
    assert_eq!(s.waste.wasted_bytes, 1000 + 300 + 50 + 70 + 3);
    assert_eq!(s.waste.files[0].path, "/data/big");
    assert_eq!(s.waste.files[0].layers, vec![0]);
    let eff = 1.0 - 1423.0 / 1833.0;
    assert!((s.waste.efficiency - eff).abs() < 1e-9);
    assert_eq!(s.waste.secrets.len(), 1);
    assert!(
        s.waste.secrets[0].deleted,
        "deleted above, still in layer 0's blob"
    );
}

#[test]
fn whiteouts_only_delete_from_lower_layers() {
    // A file added and whited out in the same layer stays (the whiteout
    // is for the layers below).
    let one = layer(|b| {
        file(b, "x", b"1");
        file(b, ".wh.x", b"");
    });
    let s = stack(&[&one]);
    assert_eq!(s.nodes.len(), 1);
    assert_eq!(s.waste.wasted_bytes, 0);
}

#[test]
fn a_file_replacing_a_directory_hides_what_was_in_it() {
    let a = layer(|b| file(b, "d/f", &[0u8; 10]));
    let b2 = layer(|b| file(b, "d", b"now a file"));
    let s = stack(&[&a, &b2]);
    assert_eq!(s.nodes.len(), 1);
    assert_eq!(s.waste.wasted_bytes, 10);
}

#[test]
fn listings_go_depth_levels_down_with_totals_and_implied_dirs() {
    let l = layer(|b| {
        file(b, "usr/bin/env", &[0u8; 100]);
        file(b, "usr/lib/x/y.so", &[0u8; 50]);
        dir(b, "usr/lib/");
        file(b, "etc/passwd", b"root");
    });
    let rows = list(&l.entries, "/", 1, |e: &Entry| (e, None));
    let got: Vec<(&str, bool, Option<u64>)> = rows
        .iter()
        .map(|r| (r.entry.path.as_str(), r.implied, r.total_bytes))
        .collect();
    assert_eq!(
        got,
        vec![("/etc", true, Some(4)), ("/usr", true, Some(150))]
    );
    let rows = list(&l.entries, "/usr", 2, |e: &Entry| (e, None));
    let got: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| (r.entry.path.as_str(), r.implied))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/usr/bin", true),
            ("/usr/bin/env", false),
            ("/usr/lib", false),
            ("/usr/lib/x", true)
        ]
    );
    assert_eq!(rows[2].total_bytes, Some(50));
    // A sibling whose name starts like the directory is not in it.
    let l = layer(|b| {
        file(b, "a/x", b"1");
        file(b, "a-b", b"2");
    });
    let rows = list(&l.entries, "/a", 1, |e: &Entry| (e, None));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].entry.path, "/a/x");
}

#[test]
fn diffs_name_added_removed_and_changed_paths() {
    let a = layer(|b| {
        file(b, "same", b"1");
        file(b, "gone", b"2");
        file(b, "edit", b"abc");
    });
    let b2 = layer(|b| {
        file(b, "same", b"1");
        file(b, "edit", b"abd");
        file(b, "new", b"4");
    });
    let d = diff(&stack(&[&a]).nodes, &stack(&[&b2]).nodes);
    let got: Vec<(&str, &str)> = d
        .iter()
        .map(|c| (c.path.as_str(), c.change.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/edit", "changed"),
            ("/gone", "removed"),
            ("/new", "added")
        ]
    );
}

#[test]
fn an_index_survives_encoding() {
    let l = layer(|b| file(b, "a", b"1"));
    assert_eq!(LayerIndex::decode(&l.encode().unwrap()).unwrap(), l);
}

#[test]
fn a_directory_emptied_and_made_again_is_listed_twice() {
    let l = layer(|b| {
        dir(b, "opt/dir/");
        file(b, "opt/dir/.wh..wh..opq", b"");
        file(b, "opt/dir/c", b"c");
    });
    let rows = list(&l.entries, "/opt", 1, |e: &Entry| (e, None));
    let got: Vec<(&str, Kind)> = rows
        .iter()
        .map(|r| (r.entry.path.as_str(), r.entry.kind))
        .collect();
    assert_eq!(
        got,
        vec![("/opt/dir", Kind::Opaque), ("/opt/dir", Kind::Dir)]
    );
}
