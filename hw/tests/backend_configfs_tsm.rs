//! The configfs-tsm backend against `FakeTsm`, a model of the kernel interface: provider check, privlevel, inblob →
//! outblob/auxblob, the generation race check (a concurrent writer must cause a retry, and a persistent one a
//! refusal), EBUSY retry, and `rmdir` of every entry on every path. Simulator-backed runs live in the agent's tests
//! (`agent/tests/backends.rs`); here the "firmware" builds minimal well-formed blobs so this crate stays standalone.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use locus_hw::backend::configfs_tsm::fake::FakeTsm;
use locus_hw::backend::configfs_tsm::{
    certs_from_auxblob, ConfigfsTsmAttester, RealTsmFs, TsmFs, TsmOptions,
};
use locus_hw::backend::{self, BackendConfig};
use locus_hw::snp::cert_table::{self, CertKind, CertTableEntry};
use locus_hw::{Attester, TeeType};

const SNP_REPORT_DATA: std::ops::Range<usize> = 0x50..0x90;
const SNP_VMPL: std::ops::Range<usize> = 0x30..0x34;
const TDX_REPORT_DATA: std::ops::Range<usize> = 568..632;

fn table() -> Vec<CertTableEntry> {
    vec![
        CertTableEntry {
            kind: CertKind::Crl,
            data: b"crl".to_vec(),
        },
        CertTableEntry {
            kind: CertKind::Ark,
            data: b"ark-der".to_vec(),
        },
        CertTableEntry {
            kind: CertKind::Vcek,
            data: b"vcek-der".to_vec(),
        },
        CertTableEntry {
            kind: CertKind::Ask,
            data: b"ask-der".to_vec(),
        },
    ]
}

/// SNP "firmware": a 1184-byte version-3 report with the report data and VMPL where the real one has them.
fn snp_firmware(rd: &[u8; 64], privlevel: u32) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let mut report = vec![0u8; 1184];
    report[0..4].copy_from_slice(&3u32.to_le_bytes());
    report[SNP_VMPL].copy_from_slice(&privlevel.to_le_bytes());
    report[SNP_REPORT_DATA].copy_from_slice(rd);
    Ok((report, Some(cert_table::encode(&table()))))
}

/// TDX "firmware": a v4 quote header and TD report body carrying the report data.
fn tdx_firmware(rd: &[u8; 64], _privlevel: u32) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let mut quote = vec![0u8; 636];
    quote[0..2].copy_from_slice(&4u16.to_le_bytes());
    quote[2..4].copy_from_slice(&2u16.to_le_bytes());
    quote[4..8].copy_from_slice(&0x81u32.to_le_bytes());
    quote[TDX_REPORT_DATA].copy_from_slice(rd);
    Ok((quote, None))
}

fn opts(expect: Option<TeeType>) -> TsmOptions {
    TsmOptions {
        expect,
        retry_backoff: Duration::from_millis(1),
        ..TsmOptions::default()
    }
}

fn rd(seed: u8) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in out.iter_mut().enumerate() {
        *b = seed ^ (i as u8).wrapping_mul(7);
    }
    out
}

fn attester(fake: &FakeTsm, expect: Option<TeeType>) -> ConfigfsTsmAttester {
    ConfigfsTsmAttester::open(Arc::new(fake.clone()), opts(expect)).expect("open")
}

#[test]
fn snp_report_carries_report_data_at_vmpl0_with_ordered_certs_and_entries_removed() {
    let fake = FakeTsm::new(Some("sev_guest"), snp_firmware);
    let a = attester(&fake, Some(TeeType::SevSnp));
    assert_eq!((a.name(), a.tee()), ("configfs-tsm", TeeType::SevSnp));
    let ev = a.attest(&rd(1)).expect("evidence");
    assert_eq!(ev.tee, TeeType::SevSnp);
    assert_eq!(&ev.raw[SNP_REPORT_DATA], &rd(1)[..]);
    assert_eq!(
        &ev.raw[SNP_VMPL],
        &0u32.to_le_bytes(),
        "privlevel 0 written"
    );
    assert_eq!(
        ev.certs,
        vec![
            b"vcek-der".to_vec(),
            b"ask-der".to_vec(),
            b"ark-der".to_vec()
        ],
        "VEK, ASK, ARK; the CRL is not a certificate"
    );
    assert_eq!(fake.live_entries(), 0);
    assert_eq!(fake.created(), 2, "probe entry + report entry");
    assert_eq!(fake.removed(), 2);
}

#[test]
fn tdx_quote_carries_report_data_and_reads_no_auxblob() {
    let fake = FakeTsm::new(Some("tdx_guest"), tdx_firmware);
    let a = attester(&fake, None);
    assert_eq!(
        a.tee(),
        TeeType::Tdx,
        "auto takes the TEE from the provider"
    );
    let ev = a.attest(&rd(2)).expect("evidence");
    assert_eq!(ev.tee, TeeType::Tdx);
    assert_eq!(&ev.raw[TDX_REPORT_DATA], &rd(2)[..]);
    assert!(ev.certs.is_empty());
    assert_eq!(fake.firmware_calls(), 1, "outblob only");
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn raced_generation_is_discarded_and_retried() {
    let fake = FakeTsm::new(Some("sev_guest"), snp_firmware);
    let a = attester(&fake, Some(TeeType::SevSnp));
    fake.race_next_reads(1);
    let ev = a.attest(&rd(3)).expect("second attempt succeeds");
    assert_eq!(fake.raced(), 1);
    assert_eq!(
        &ev.raw[SNP_REPORT_DATA],
        &rd(3)[..],
        "the other writer's report is never returned"
    );
    assert_eq!(fake.created(), 3, "probe + raced attempt + retry");
    assert_eq!(fake.live_entries(), 0, "the raced entry is removed too");
}

#[test]
fn persistent_race_is_refused_as_busy() {
    let fake = FakeTsm::new(Some("tdx_guest"), tdx_firmware);
    let a = attester(&fake, Some(TeeType::Tdx));
    fake.race_next_reads(u32::MAX);
    let err = a.attest(&rd(4)).expect_err("every attempt raced");
    assert_eq!(err.code(), "attester_busy");
    assert!(err.to_string().contains("generation raced"), "{err}");
    assert_eq!(
        fake.raced(),
        u64::from(TsmOptions::default().max_attempts),
        "bounded"
    );
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn ebusy_is_retried() {
    let fake = FakeTsm::new(Some("sev_guest"), snp_firmware);
    let a = attester(&fake, Some(TeeType::SevSnp));
    fake.fail_next_writes_busy(2);
    let ev = a.attest(&rd(5)).expect("succeeds after EBUSY");
    assert_eq!(&ev.raw[SNP_REPORT_DATA], &rd(5)[..]);
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn persistent_ebusy_is_refused_as_busy() {
    let fake = FakeTsm::new(Some("sev_guest"), snp_firmware);
    let a = attester(&fake, Some(TeeType::SevSnp));
    fake.fail_next_writes_busy(u32::MAX);
    let err = a.attest(&rd(6)).expect_err("always busy");
    assert_eq!(err.code(), "attester_busy");
    assert!(err.to_string().contains("EBUSY"), "{err}");
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn provider_of_the_other_tee_is_unavailable() {
    let fake = FakeTsm::new(Some("tdx_guest"), tdx_firmware);
    let err = ConfigfsTsmAttester::open(Arc::new(fake.clone()), opts(Some(TeeType::SevSnp)))
        .expect_err("wrong provider");
    assert_eq!(err.code(), "attester_unavailable");
    assert!(err.to_string().contains("tdx_guest"), "{err}");
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn unknown_or_missing_provider_is_unavailable() {
    let cca = FakeTsm::new(Some("arm_cca_guest"), tdx_firmware);
    let err = ConfigfsTsmAttester::open(Arc::new(cca.clone()), opts(None)).expect_err("unknown");
    assert_eq!(err.code(), "attester_unavailable");
    assert!(err.to_string().contains("arm_cca_guest"), "{err}");

    let none = FakeTsm::new(None, tdx_firmware);
    let err =
        ConfigfsTsmAttester::open(Arc::new(none.clone()), opts(None)).expect_err("no provider");
    assert_eq!(err.code(), "attester_unavailable");
    assert!(err.to_string().contains("no provider"), "{err}");
    assert_eq!(cca.live_entries() + none.live_entries(), 0);
}

#[test]
fn privlevel_is_written_and_a_floor_above_it_is_refused() {
    let fake = FakeTsm::new(Some("sev_guest"), snp_firmware).with_privlevel_floor(2);
    let a = attester(&fake, Some(TeeType::SevSnp));
    let err = a.attest(&rd(7)).expect_err("floor 2 > privlevel 0");
    assert_eq!(err.code(), "attester_unavailable");
    assert!(err.to_string().contains("privlevel_floor 2"), "{err}");

    let at_floor = ConfigfsTsmAttester::open(
        Arc::new(fake.clone()),
        TsmOptions {
            privlevel: 2,
            ..opts(Some(TeeType::SevSnp))
        },
    )
    .expect("open");
    let ev = at_floor.attest(&rd(7)).expect("evidence at VMPL 2");
    assert_eq!(&ev.raw[SNP_VMPL], &2u32.to_le_bytes());
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn outblob_that_is_not_the_providers_format_is_refused() {
    let fake = FakeTsm::new(Some("sev_guest"), tdx_firmware);
    let a = attester(&fake, Some(TeeType::SevSnp));
    let err = a.attest(&rd(8)).expect_err("a quote from sev_guest");
    assert_eq!(err.code(), "attester_failed");
    assert!(err.to_string().contains("not an SEV-SNP report"), "{err}");
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn malformed_or_empty_auxblob_yields_evidence_without_certs() {
    let garbage = FakeTsm::new(Some("sev_guest"), |rd: &[u8; 64], p: u32| {
        let (report, _) = snp_firmware(rd, p)?;
        // One entry pointing far past the end of the table.
        let mut aux = vec![0u8; 48];
        aux[..16].copy_from_slice(&CertKind::Vcek.guid());
        aux[16..20].copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
        aux[20..24].copy_from_slice(&16u32.to_le_bytes());
        Ok((report, Some(aux)))
    });
    let ev = attester(&garbage, Some(TeeType::SevSnp))
        .attest(&rd(9))
        .expect("evidence");
    assert!(ev.certs.is_empty());
    assert_eq!(&ev.raw[SNP_REPORT_DATA], &rd(9)[..]);

    let absent = FakeTsm::new(Some("sev_guest"), |rd: &[u8; 64], p: u32| {
        Ok((snp_firmware(rd, p)?.0, None))
    });
    let ev = attester(&absent, Some(TeeType::SevSnp))
        .attest(&rd(9))
        .expect("evidence");
    assert!(ev.certs.is_empty());
    assert!(
        certs_from_auxblob(&[0u8; 4096]).is_empty(),
        "zero page: no table"
    );
}

#[test]
fn auto_uses_configfs_first_and_reports_each_failed_probe() {
    let fake = FakeTsm::new(Some("sev_guest"), snp_firmware);
    let cfg = BackendConfig {
        tsm: Arc::new(fake.clone()),
        sev_guest_enabled: false,
        tdx_attest_library: Some("/nonexistent/libtdx_attest.so".into()),
        ..BackendConfig::default()
    };
    let a = backend::open(None, &cfg).expect("configfs-tsm answers");
    assert_eq!((a.name(), a.tee()), ("configfs-tsm", TeeType::SevSnp));

    // Asking for TDX where configfs serves SNP: configfs is skipped, sev-guest is not a TDX backend, libtdx_attest
    // is absent.
    let err = backend::open(Some(TeeType::Tdx), &cfg)
        .err()
        .expect("no TDX here");
    let names: Vec<_> = err.probes.iter().map(|p| p.backend).collect();
    assert_eq!(names, ["configfs-tsm", "libtdx_attest"]);
    assert!(
        err.to_string().starts_with("no TDX attester found"),
        "{err}"
    );
}

#[test]
fn real_tree_without_the_interface_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = RealTsmFs::new(dir.path().join("tsm/report"));
    let err = ConfigfsTsmAttester::open(Arc::new(missing), opts(None)).expect_err("no root");
    assert_eq!(err.code(), "attester_unavailable");
    assert!(err.to_string().contains("tsm/report"), "{err}");

    // A root where mkdir yields a plain directory (no kernel behind it): no provider, and the entry is removed.
    let plain = RealTsmFs::new(dir.path());
    let err =
        ConfigfsTsmAttester::open(Arc::new(plain.clone()), opts(None)).expect_err("no provider");
    assert!(err.to_string().contains("no provider"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("read_dir").count(),
        0,
        "probe entry removed"
    );
    assert!(plain.root_present().is_ok());
}

#[test]
fn real_tree_maps_each_operation_to_the_file_system_without_creating_attributes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = RealTsmFs::new(dir.path());
    fs.create_entry("e1").expect("mkdir");
    assert!(dir.path().join("e1").is_dir());
    assert_eq!(
        fs.create_entry("e1").expect_err("exists").kind(),
        std::io::ErrorKind::AlreadyExists
    );
    // configfs attributes exist once the entry does; here we play the kernel and create them.
    std::fs::write(dir.path().join("e1/provider"), b"sev_guest\n").expect("provider");
    std::fs::write(dir.path().join("e1/inblob"), b"").expect("inblob");
    assert_eq!(
        fs.read_attr("e1", "provider").expect("read"),
        b"sev_guest\n"
    );
    fs.write_attr("e1", "inblob", &[7u8; 64]).expect("write");
    assert_eq!(
        std::fs::read(dir.path().join("e1/inblob")).expect("read back"),
        vec![7u8; 64]
    );
    assert_eq!(
        fs.write_attr("e1", "privlevel", b"0")
            .expect_err("never created")
            .kind(),
        std::io::ErrorKind::NotFound
    );
    assert!(!dir.path().join("e1/privlevel").exists());
    for f in ["provider", "inblob"] {
        std::fs::remove_file(dir.path().join("e1").join(f)).expect("cleanup");
    }
    fs.remove_entry("e1").expect("rmdir");
    assert!(!dir.path().join("e1").exists());
    assert_eq!(fs.location(), dir.path().display().to_string());
}

#[test]
fn sev_guest_without_the_device_is_unavailable() {
    use locus_hw::backend::sev_guest::{SevGuestAttester, SevGuestCerts};
    if std::path::Path::new("/dev/sev-guest").exists() {
        println!("SKIP: /dev/sev-guest exists on this machine");
        return;
    }
    let err = SevGuestAttester::open(SevGuestCerts::None).expect_err("no device");
    assert_eq!(err.code(), "attester_unavailable");
    assert!(err.to_string().contains("/dev/sev-guest"), "{err}");
}
