//! Our `libtdx_attest` FFI bindings against a stand-in library compiled from C during the test
//! (`tests/stand-in/tdx_attest_standin.c`): report data passes intact in both directions, quote memory always goes
//! back through `tdx_att_free_quote`, every C error code maps to its named variant, and a missing library is a clean
//! "unavailable" that lets `auto` fall through.
// The test reaches the stand-in's control functions through libloading, which is unsafe FFI.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use locus_hw::backend::tdx_attest::{
    TdxAttestAttester, TdxAttestError, TdxAttestLib, TdxUuid, TDX_SGX_ECDSA_ATTESTATION_ID,
};
use locus_hw::backend::{self, BackendConfig};
use locus_hw::{Attester, TeeType};

/// Compiles the stand-in once per test binary; returns the path of the built `.so`.
fn built_stand_in() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("libtdx_attest_standin.so");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stand-in/tdx_attest_standin.c");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect(
                "a C compiler `cc` is needed for the libtdx_attest stand-in (.ci/run installs gcc)",
            );
        assert!(status.success(), "compiling the stand-in failed");
        (dir, out)
    });
    path
}

/// A private copy of the stand-in, so each test gets its own instance (own counters, own injected error):
/// the dynamic loader shares one instance per file, not per path string.
struct StandIn {
    _dir: tempfile::TempDir,
    path: PathBuf,
    control: libloading::Library,
}

impl StandIn {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("libtdx_attest.so.1");
        std::fs::copy(built_stand_in(), &path).expect("copy stand-in");
        // SAFETY: the stand-in has no initialisers; we load it to reach its test-control functions.
        let control =
            unsafe { libloading::Library::new(&path) }.expect("load stand-in for control");
        Self {
            _dir: dir,
            path,
            control,
        }
    }

    fn counter(&self, name: &[u8]) -> u64 {
        // SAFETY: every counter function of the stand-in is `uint64_t f(void)`.
        unsafe {
            let f = self
                .control
                .get::<unsafe extern "C" fn() -> u64>(name)
                .expect("counter symbol");
            f()
        }
    }

    fn allocs(&self) -> u64 {
        self.counter(b"stand_in_allocs\0")
    }

    fn frees(&self) -> u64 {
        self.counter(b"stand_in_frees\0")
    }

    fn bad_frees(&self) -> u64 {
        self.counter(b"stand_in_bad_frees\0")
    }

    fn set_error(&self, code: u32) {
        // SAFETY: `void stand_in_set_error(uint32_t)`.
        unsafe {
            let f = self
                .control
                .get::<unsafe extern "C" fn(u32)>(b"stand_in_set_error\0")
                .expect("symbol");
            f(code)
        }
    }

    fn set_empty_quote(&self, on: bool) {
        // SAFETY: `void stand_in_set_empty_quote(int)`.
        unsafe {
            let f = self
                .control
                .get::<unsafe extern "C" fn(i32)>(b"stand_in_set_empty_quote\0")
                .expect("symbol");
            f(i32::from(on))
        }
    }

    fn set_template(&self, path: &Path) {
        let c = std::ffi::CString::new(path.to_str().expect("utf-8")).expect("no NUL");
        // SAFETY: `void stand_in_set_template(const char *)` copies the string before returning.
        unsafe {
            let f = self
                .control
                .get::<unsafe extern "C" fn(*const std::ffi::c_char)>(b"stand_in_set_template\0")
                .expect("symbol");
            f(c.as_ptr())
        }
    }

    fn last_extend(&self) -> (u64, [u8; 48]) {
        let mut out = [0u8; 48];
        // SAFETY: `uint64_t stand_in_last_extend(uint8_t out[48])` writes exactly 48 bytes.
        let idx = unsafe {
            let f = self
                .control
                .get::<unsafe extern "C" fn(*mut u8) -> u64>(b"stand_in_last_extend\0")
                .expect("symbol");
            f(out.as_mut_ptr())
        };
        (idx, out)
    }

    fn lib(&self) -> TdxAttestLib {
        TdxAttestLib::load(Some(&self.path)).expect("load stand-in through our bindings")
    }
}

fn pattern(seed: u8) -> [u8; 64] {
    let mut rd = [0u8; 64];
    for (i, b) in rd.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8);
    }
    rd
}

#[test]
fn quote_carries_the_report_data_intact_and_is_freed_through_the_library() {
    let s = StandIn::new();
    let lib = s.lib();
    for seed in 0..5u8 {
        let rd = pattern(seed);
        let (quote, chosen) = lib.get_quote(&rd, None).expect("quote");
        assert_eq!(chosen, None);
        assert_eq!(
            &quote[568..632],
            &rd[..],
            "report data at TD report body offset 520"
        );
        assert_eq!(TeeType::detect(&quote), Some(TeeType::Tdx));
    }
    assert_eq!(s.allocs(), 5);
    assert_eq!(
        s.frees(),
        5,
        "every quote buffer returned through tdx_att_free_quote"
    );
    assert_eq!(s.bad_frees(), 0);
}

#[test]
fn attester_produces_tdx_evidence_and_frees_the_quote() {
    let s = StandIn::new();
    let attester = TdxAttestAttester::new(s.lib());
    assert_eq!(attester.tee(), TeeType::Tdx);
    assert_eq!(attester.name(), "libtdx_attest");
    let rd = pattern(9);
    let ev = attester.attest(&rd).expect("evidence");
    assert_eq!(ev.tee, TeeType::Tdx);
    assert_eq!(&ev.raw[568..632], &rd[..]);
    assert!(ev.certs.is_empty());
    assert_eq!((s.allocs(), s.frees()), (1, 1));
}

#[test]
fn explicit_key_id_list_returns_the_chosen_id() {
    let s = StandIn::new();
    let lib = s.lib();
    let ids = lib.supported_att_key_ids().expect("ids");
    assert_eq!(
        ids,
        vec![TdxUuid {
            d: TDX_SGX_ECDSA_ATTESTATION_ID
        }]
    );
    let (_, chosen) = lib.get_quote(&pattern(1), Some(&ids)).expect("quote");
    assert_eq!(
        chosen,
        Some(TdxUuid {
            d: TDX_SGX_ECDSA_ATTESTATION_ID
        })
    );
    let unknown = [TdxUuid { d: [0x11; 16] }];
    assert_eq!(
        lib.get_quote(&pattern(1), Some(&unknown))
            .expect_err("must fail"),
        TdxAttestError::UnsupportedAttKeyId
    );
    assert_eq!(s.allocs(), s.frees());
}

#[test]
fn empty_quote_is_refused_and_its_buffer_still_freed() {
    let s = StandIn::new();
    let lib = s.lib();
    s.set_empty_quote(true);
    assert_eq!(
        lib.get_quote(&pattern(2), None).expect_err("must fail"),
        TdxAttestError::EmptyQuote
    );
    assert_eq!(
        (s.allocs(), s.frees()),
        (1, 1),
        "guard frees a buffer even when the quote is refused"
    );
    let attester = TdxAttestAttester::new(lib);
    let err = attester.attest(&pattern(2)).expect_err("must fail");
    assert_eq!(err.code(), "attester_failed");
    assert_eq!((s.allocs(), s.frees()), (2, 2));
}

#[test]
fn td_report_carries_the_report_data() {
    let s = StandIn::new();
    let rd = pattern(3);
    let report = s.lib().get_report(&rd).expect("report");
    assert_eq!(report.len(), 1024);
    assert_eq!(&report[128..192], &rd[..], "REPORTMACSTRUCT.report_data");
}

#[test]
fn extend_passes_index_and_digest_through_the_packed_event() {
    let s = StandIn::new();
    let lib = s.lib();
    let mut digest = [0u8; 48];
    for (i, b) in digest.iter_mut().enumerate() {
        *b = 0xA0 ^ i as u8;
    }
    lib.extend(3, &digest).expect("extend RTMR 3");
    assert_eq!(s.last_extend(), (3, digest));
    assert_eq!(
        lib.extend(0, &digest).expect_err("must fail"),
        TdxAttestError::RtmrNotExtendable(0)
    );
    assert_eq!(
        lib.extend_unchecked(1, &digest).expect_err("must fail"),
        TdxAttestError::InvalidRtmrIndex
    );
    assert_eq!(
        s.last_extend(),
        (3, digest),
        "refused extends change nothing"
    );
}

#[test]
fn every_c_error_code_maps_to_its_named_variant_without_leaking() {
    let s = StandIn::new();
    let lib = s.lib();
    let table = [
        (0x01, TdxAttestError::Unexpected, "attester_failed"),
        (0x02, TdxAttestError::InvalidParameter, "attester_failed"),
        (0x03, TdxAttestError::OutOfMemory, "attester_failed"),
        (0x04, TdxAttestError::VsockFailure, "attester_unavailable"),
        (0x05, TdxAttestError::ReportFailure, "attester_failed"),
        (0x06, TdxAttestError::ExtendFailure, "attester_failed"),
        (0x07, TdxAttestError::NotSupported, "attester_unavailable"),
        (0x08, TdxAttestError::QuoteFailure, "attester_failed"),
        (0x09, TdxAttestError::Busy, "attester_busy"),
        (0x0a, TdxAttestError::DeviceFailure, "attester_unavailable"),
        (0x0b, TdxAttestError::InvalidRtmrIndex, "attester_failed"),
        (0x0c, TdxAttestError::UnsupportedAttKeyId, "attester_failed"),
        (0x4242, TdxAttestError::Unknown(0x4242), "attester_failed"),
    ];
    let attester = TdxAttestAttester::new(s.lib());
    for (code, variant, agent_code) in table {
        s.set_error(code);
        assert_eq!(
            lib.get_quote(&pattern(4), None).expect_err("must fail"),
            variant,
            "get_quote {code:#x}"
        );
        assert_eq!(
            lib.get_report(&pattern(4)).expect_err("must fail"),
            variant,
            "get_report {code:#x}"
        );
        assert_eq!(
            lib.extend(2, &[0; 48]).expect_err("must fail"),
            variant,
            "extend {code:#x}"
        );
        assert_eq!(
            lib.supported_att_key_ids().expect_err("must fail"),
            variant,
            "key ids {code:#x}"
        );
        assert_eq!(
            attester.attest(&pattern(4)).expect_err("must fail").code(),
            agent_code,
            "agent code for {code:#x}"
        );
    }
    s.set_error(0);
    lib.get_quote(&pattern(4), None)
        .expect("recovers once the error is cleared");
    assert_eq!(s.allocs(), s.frees());
    assert_eq!(s.bad_frees(), 0);
}

#[test]
fn absent_library_is_unavailable_and_auto_falls_through_listing_each_probe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("libtdx_attest.so.1");
    let err = TdxAttestLib::load(Some(&missing)).expect_err("must fail");
    assert!(err.to_string().contains("libtdx_attest.so.1"), "{err}");

    let cfg = BackendConfig {
        tsm: std::sync::Arc::new(locus_hw::backend::configfs_tsm::RealTsmFs::new(
            dir.path().join("no-tsm"),
        )),
        sev_guest_enabled: false,
        tdx_attest_library: Some(missing.clone()),
        ..BackendConfig::default()
    };
    let err = backend::open(None, &cfg).err().expect("nothing to find");
    assert_eq!(err.code(), "attester_unavailable");
    let names: Vec<_> = err.probes.iter().map(|p| p.backend).collect();
    assert_eq!(
        names,
        ["configfs-tsm", "sev-guest", "libtdx_attest"],
        "the probe order of docs/agent.md"
    );
    let text = err.to_string();
    assert!(
        text.contains("no-tsm") && text.contains(&missing.display().to_string()),
        "{text}"
    );
    assert_eq!(
        locus_hw::AttestError::from(err).code(),
        "attester_unavailable"
    );
}

#[test]
fn auto_picks_the_library_when_it_answers() {
    let s = StandIn::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = BackendConfig {
        tsm: std::sync::Arc::new(locus_hw::backend::configfs_tsm::RealTsmFs::new(
            dir.path().join("no-tsm"),
        )),
        sev_guest_enabled: false,
        tdx_attest_library: Some(s.path.clone()),
        ..BackendConfig::default()
    };
    let attester = backend::open(Some(TeeType::Tdx), &cfg).expect("stand-in answers");
    assert_eq!(attester.name(), "libtdx_attest");
    let rd = pattern(7);
    assert_eq!(
        &attester.attest(&rd).expect("evidence").raw[568..632],
        &rd[..]
    );

    s.set_error(0x0a);
    let err = backend::open(Some(TeeType::Tdx), &cfg)
        .err()
        .expect("device failure is not a usable backend");
    assert!(err.to_string().contains("no TD report"), "{err}");
    assert!(
        backend::open(Some(TeeType::SevSnp), &cfg).is_err(),
        "the TDX library never serves SNP"
    );
}

#[test]
fn template_quote_is_returned_with_only_the_report_data_replaced() {
    let s = StandIn::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let template_path = dir.path().join("quote.bin");
    let mut template: Vec<u8> = (0..900u32).map(|i| (i * 7 % 251) as u8).collect();
    template[0..2].copy_from_slice(&4u16.to_le_bytes());
    template[4..8].copy_from_slice(&0x81u32.to_le_bytes());
    std::fs::write(&template_path, &template).expect("write template");
    s.set_template(&template_path);
    let rd = pattern(11);
    let (quote, _) = s.lib().get_quote(&rd, None).expect("quote");
    let mut want = template.clone();
    want[568..632].copy_from_slice(&rd);
    assert_eq!(quote, want);

    s.set_template(&dir.path().join("missing.bin"));
    assert_eq!(
        s.lib().get_quote(&rd, None).expect_err("no template"),
        TdxAttestError::QuoteFailure
    );
    assert_eq!(s.allocs(), s.frees());
}
