//! Intel `libtdx_attest` (DCAP `tdx_attest.h`) through our own FFI declarations, loaded at run time with
//! `libloading` so the agent starts (and `auto` falls through) where the library is absent (Intel DCAP `tdx_attest.h`).
//!
//! Every C error code maps to a named [`TdxAttestError`] variant; quote memory handed out by the library is always
//! returned through `tdx_att_free_quote` (a drop guard owns it from the moment the call returns).
#![allow(unsafe_code)]

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::attester::{AttestError, Attester, Evidence};
use crate::TeeType;

/// Default file names tried, in order, when no path is configured.
pub const DEFAULT_LIBRARY_NAMES: [&str; 2] = ["libtdx_attest.so.1", "libtdx_attest.so"];

/// `TDX_SGX_ECDSA_ATTESTATION_ID` = e86c046e-8cc4-4d95-8173-fc43c1fa4f3f (byte order as the string reads).
pub const TDX_SGX_ECDSA_ATTESTATION_ID: [u8; 16] = [
    0xe8, 0x6c, 0x04, 0x6e, 0x8c, 0xc4, 0x4d, 0x95, 0x81, 0x73, 0xfc, 0x43, 0xc1, 0xfa, 0x4f, 0x3f,
];

/// Size of `tdx_report_t` (the MACed TD report for the local QE; not remote evidence).
pub const TD_REPORT_SIZE: usize = 1024;

/// Largest quote we accept from the library; a quote with its PCK chain is a few KiB.
pub const MAX_QUOTE_SIZE: usize = 1 << 20;

/// Largest attestation key id list we accept from `tdx_att_get_supported_att_key_ids`.
pub const MAX_ATT_KEY_IDS: u32 = 64;

/// `tdx_uuid_t` (packed, 16 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TdxUuid {
    /// The UUID bytes.
    pub d: [u8; 16],
}

/// `tdx_report_data_t` (packed, 64 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct TdxReportData {
    d: [u8; 64],
}

/// `tdx_report_t` (packed, 1024 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct TdxReport {
    d: [u8; TD_REPORT_SIZE],
}

/// `tdx_rtmr_event_t` header (packed; `event_data[]` flexible member is empty because `event_data_size` must be 0).
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct TdxRtmrEvent {
    version: u32,
    rtmr_index: u64,
    extend_data: [u8; 48],
    event_type: u32,
    event_data_size: u32,
}

/// `TDX_ATTEST_RTMR_EVENT_VERSION` expected by the library.
const RTMR_EVENT_VERSION: u32 = 1;

type GetQuoteFn = unsafe extern "C" fn(
    p_tdx_report_data: *const TdxReportData,
    att_key_id_list: *const TdxUuid,
    list_size: u32,
    p_att_key_id: *mut TdxUuid,
    pp_quote: *mut *mut u8,
    p_quote_size: *mut u32,
    flags: u32,
) -> u32;
type FreeQuoteFn = unsafe extern "C" fn(p_quote: *mut u8) -> u32;
type GetReportFn = unsafe extern "C" fn(
    p_tdx_report_data: *const TdxReportData,
    p_tdx_report: *mut TdxReport,
) -> u32;
type ExtendFn = unsafe extern "C" fn(p_rtmr_event: *const TdxRtmrEvent) -> u32;
type GetSupportedAttKeyIdsFn =
    unsafe extern "C" fn(p_att_key_id_list: *mut TdxUuid, p_list_size: *mut u32) -> u32;

/// `tdx_attest_error_t`, one named variant per C code of `tdx_attest.h`, plus what our side can detect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxAttestError {
    /// 0x01 `TDX_ATTEST_ERROR_UNEXPECTED`.
    #[error("libtdx_attest: unexpected error (0x01)")]
    Unexpected,
    /// 0x02 `TDX_ATTEST_ERROR_INVALID_PARAMETER`.
    #[error("libtdx_attest: invalid parameter (0x02)")]
    InvalidParameter,
    /// 0x03 `TDX_ATTEST_ERROR_OUT_OF_MEMORY`.
    #[error("libtdx_attest: out of memory (0x03)")]
    OutOfMemory,
    /// 0x04 `TDX_ATTEST_ERROR_VSOCK_FAILURE`.
    #[error("libtdx_attest: vsock failure talking to the quote generation service (0x04)")]
    VsockFailure,
    /// 0x05 `TDX_ATTEST_ERROR_REPORT_FAILURE`.
    #[error("libtdx_attest: TD report failure (0x05)")]
    ReportFailure,
    /// 0x06 `TDX_ATTEST_ERROR_EXTEND_FAILURE`.
    #[error("libtdx_attest: RTMR extend failure (0x06)")]
    ExtendFailure,
    /// 0x07 `TDX_ATTEST_ERROR_NOT_SUPPORTED`.
    #[error("libtdx_attest: not supported (0x07)")]
    NotSupported,
    /// 0x08 `TDX_ATTEST_ERROR_QUOTE_FAILURE`.
    #[error("libtdx_attest: quote failure (0x08)")]
    QuoteFailure,
    /// 0x09 `TDX_ATTEST_ERROR_BUSY`.
    #[error("libtdx_attest: device busy (0x09)")]
    Busy,
    /// 0x0a `TDX_ATTEST_ERROR_DEVICE_FAILURE`.
    #[error("libtdx_attest: device failure, /dev/tdx_guest missing or unusable (0x0a)")]
    DeviceFailure,
    /// 0x0b `TDX_ATTEST_ERROR_INVALID_RTMR_INDEX`.
    #[error("libtdx_attest: invalid RTMR index (0x0b)")]
    InvalidRtmrIndex,
    /// 0x0c `TDX_ATTEST_ERROR_UNSUPPORTED_ATT_KEY_ID`.
    #[error("libtdx_attest: unsupported attestation key id (0x0c)")]
    UnsupportedAttKeyId,
    /// A code `tdx_attest.h` does not define.
    #[error("libtdx_attest: unknown error code {0:#x}")]
    Unknown(u32),
    /// The library reported success but handed back no quote or an empty one.
    #[error("libtdx_attest: success reported but no quote returned")]
    EmptyQuote,
    /// The library reported success with a quote larger than [`MAX_QUOTE_SIZE`].
    #[error("libtdx_attest: quote of {0} bytes exceeds the {MAX_QUOTE_SIZE}-byte limit")]
    QuoteTooLarge(u32),
    /// The library reported more attestation key ids than [`MAX_ATT_KEY_IDS`].
    #[error("libtdx_attest: {0} attestation key ids exceed the limit of {MAX_ATT_KEY_IDS}")]
    TooManyAttKeyIds(u32),
    /// Only RTMR 2 and 3 may be extended from inside the TD; checked before calling the library.
    #[error("RTMR {0} cannot be extended (only 2 and 3)")]
    RtmrNotExtendable(u64),
}

impl TdxAttestError {
    /// Map a `tdx_attest_error_t` value; `None` for `TDX_ATTEST_SUCCESS` (0).
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0x00 => return None,
            0x01 => Self::Unexpected,
            0x02 => Self::InvalidParameter,
            0x03 => Self::OutOfMemory,
            0x04 => Self::VsockFailure,
            0x05 => Self::ReportFailure,
            0x06 => Self::ExtendFailure,
            0x07 => Self::NotSupported,
            0x08 => Self::QuoteFailure,
            0x09 => Self::Busy,
            0x0a => Self::DeviceFailure,
            0x0b => Self::InvalidRtmrIndex,
            0x0c => Self::UnsupportedAttKeyId,
            other => Self::Unknown(other),
        })
    }

    /// The C code this error came from, if it came from the library.
    pub fn c_code(&self) -> Option<u32> {
        Some(match self {
            Self::Unexpected => 0x01,
            Self::InvalidParameter => 0x02,
            Self::OutOfMemory => 0x03,
            Self::VsockFailure => 0x04,
            Self::ReportFailure => 0x05,
            Self::ExtendFailure => 0x06,
            Self::NotSupported => 0x07,
            Self::QuoteFailure => 0x08,
            Self::Busy => 0x09,
            Self::DeviceFailure => 0x0a,
            Self::InvalidRtmrIndex => 0x0b,
            Self::UnsupportedAttKeyId => 0x0c,
            Self::Unknown(c) => *c,
            Self::EmptyQuote
            | Self::QuoteTooLarge(_)
            | Self::TooManyAttKeyIds(_)
            | Self::RtmrNotExtendable(_) => return None,
        })
    }
}

fn check(code: u32) -> Result<(), TdxAttestError> {
    match TdxAttestError::from_code(code) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

impl From<TdxAttestError> for AttestError {
    fn from(e: TdxAttestError) -> Self {
        match e {
            TdxAttestError::Busy => AttestError::Busy(e.to_string()),
            TdxAttestError::NotSupported
            | TdxAttestError::DeviceFailure
            | TdxAttestError::VsockFailure => AttestError::Unavailable(e.to_string()),
            _ => AttestError::Failed(e.to_string()),
        }
    }
}

/// The library could not be loaded (absent, or missing one of the five functions).
#[derive(Debug, thiserror::Error)]
#[error("not loadable: {}", attempts_text(.attempts))]
pub struct LoadError {
    /// Each path tried and why it failed.
    pub attempts: Vec<(PathBuf, String)>,
}

fn attempts_text(attempts: &[(PathBuf, String)]) -> String {
    attempts
        .iter()
        .map(|(p, why)| {
            let shown = p.display().to_string();
            // dlerror() usually starts with the file name already.
            if why.starts_with(&shown) {
                why.clone()
            } else {
                format!("{shown}: {why}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A loaded `libtdx_attest` with its five entry points resolved.
pub struct TdxAttestLib {
    get_quote: GetQuoteFn,
    free_quote: FreeQuoteFn,
    get_report: GetReportFn,
    extend: ExtendFn,
    get_supported_att_key_ids: GetSupportedAttKeyIdsFn,
    path: PathBuf,
    // Kept last and never dropped while the function pointers above are reachable: they point into it.
    _lib: libloading::Library,
}

impl fmt::Debug for TdxAttestLib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TdxAttestLib")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TdxAttestLib {
    /// Load from `path`, or when `None` try [`DEFAULT_LIBRARY_NAMES`] in order (dynamic loader search path).
    pub fn load(path: Option<&Path>) -> Result<Self, LoadError> {
        let candidates: Vec<PathBuf> = match path {
            Some(p) => vec![p.to_path_buf()],
            None => DEFAULT_LIBRARY_NAMES.iter().map(PathBuf::from).collect(),
        };
        let mut attempts = Vec::new();
        for candidate in candidates {
            match Self::load_one(&candidate) {
                Ok(lib) => return Ok(lib),
                Err(why) => attempts.push((candidate, why)),
            }
        }
        Err(LoadError { attempts })
    }

    fn load_one(path: &Path) -> Result<Self, String> {
        let name: OsString = path.as_os_str().to_owned();
        // SAFETY: loading a shared library runs its initialisers. The library is the operator-configured (or
        // loader-resolved) Intel libtdx_attest, whose initialisers have no preconditions on our side; we load it
        // once per attester and keep it loaded for the lifetime of the function pointers taken from it.
        let lib = unsafe { libloading::Library::new(&name) }.map_err(|e| e.to_string())?;
        // SAFETY (all five lookups): each symbol is declared in `tdx_attest.h` with exactly the C signature spelled
        // by the corresponding `*Fn` type above (`tdx_attest.h`); the copied function pointers stay valid because `lib`
        // is stored in the same struct and outlives every call made through them.
        let get_quote =
            unsafe { lib.get::<GetQuoteFn>(b"tdx_att_get_quote\0") }.map_err(|e| e.to_string())?;
        let get_quote = *get_quote;
        // SAFETY: see above.
        let free_quote = unsafe { lib.get::<FreeQuoteFn>(b"tdx_att_free_quote\0") }
            .map_err(|e| e.to_string())?;
        let free_quote = *free_quote;
        // SAFETY: see above.
        let get_report = unsafe { lib.get::<GetReportFn>(b"tdx_att_get_report\0") }
            .map_err(|e| e.to_string())?;
        let get_report = *get_report;
        // SAFETY: see above.
        let extend =
            unsafe { lib.get::<ExtendFn>(b"tdx_att_extend\0") }.map_err(|e| e.to_string())?;
        let extend = *extend;
        // SAFETY: see above.
        let get_supported_att_key_ids =
            unsafe { lib.get::<GetSupportedAttKeyIdsFn>(b"tdx_att_get_supported_att_key_ids\0") }
                .map_err(|e| e.to_string())?;
        let get_supported_att_key_ids = *get_supported_att_key_ids;
        Ok(Self {
            get_quote,
            free_quote,
            get_report,
            extend,
            get_supported_att_key_ids,
            path: path.to_path_buf(),
            _lib: lib,
        })
    }

    /// The path (or loader name) the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `tdx_att_get_quote`: a TD quote carrying `report_data`. With `att_key_ids` the library picks one of them and
    /// the chosen id is returned; with `None` the library uses its default key. `flags` is always 0.
    pub fn get_quote(
        &self,
        report_data: &[u8; 64],
        att_key_ids: Option<&[TdxUuid]>,
    ) -> Result<(Vec<u8>, Option<TdxUuid>), TdxAttestError> {
        let rd = TdxReportData { d: *report_data };
        let (list_ptr, list_len) = match att_key_ids {
            Some(ids) => {
                let len = u32::try_from(ids.len()).map_err(|_| TdxAttestError::InvalidParameter)?;
                (ids.as_ptr(), len)
            }
            None => (std::ptr::null(), 0),
        };
        let mut chosen = TdxUuid::default();
        let mut quote_ptr: *mut u8 = std::ptr::null_mut();
        let mut quote_size: u32 = 0;
        // SAFETY: every pointer is valid for the duration of the call: `rd` is a live 64-byte packed struct,
        // `list_ptr` is null with size 0 or points at `list_len` packed 16-byte UUIDs, `chosen`, `quote_ptr` and
        // `quote_size` are live locals the library writes through. `flags` must be 0 (`tdx_attest.h`).
        let code = unsafe {
            (self.get_quote)(
                &rd,
                list_ptr,
                list_len,
                &mut chosen,
                &mut quote_ptr,
                &mut quote_size,
                0,
            )
        };
        // From here the library-owned buffer (if any) is returned through `tdx_att_free_quote`, whatever happens.
        let guard = QuoteGuard {
            lib: self,
            ptr: quote_ptr,
        };
        check(code)?;
        if guard.ptr.is_null() || quote_size == 0 {
            return Err(TdxAttestError::EmptyQuote);
        }
        let size = quote_size as usize;
        if size > MAX_QUOTE_SIZE {
            return Err(TdxAttestError::QuoteTooLarge(quote_size));
        }
        // SAFETY: on success the library hands out a buffer of `quote_size` bytes at `quote_ptr` (checked non-null
        // and bounded above); it stays allocated until `guard` frees it after this copy.
        let quote = unsafe { std::slice::from_raw_parts(guard.ptr, size) }.to_vec();
        drop(guard);
        Ok((quote, att_key_ids.map(|_| chosen)))
    }

    /// `tdx_att_get_report`: the 1024-byte TD report (MACed for the local QE only; not remote evidence).
    pub fn get_report(
        &self,
        report_data: &[u8; 64],
    ) -> Result<Box<[u8; TD_REPORT_SIZE]>, TdxAttestError> {
        let rd = TdxReportData { d: *report_data };
        let mut report = Box::new(TdxReport {
            d: [0u8; TD_REPORT_SIZE],
        });
        // SAFETY: `rd` is a live 64-byte struct and `report` a live, writable 1024-byte struct, matching
        // `tdx_report_data_t` and `tdx_report_t`.
        let code = unsafe { (self.get_report)(&rd, &mut *report) };
        check(code)?;
        Ok(Box::new(report.d))
    }

    /// `tdx_att_extend`: extend RTMR `rtmr_index` (2 or 3) with a SHA-384 digest; no event data.
    pub fn extend(&self, rtmr_index: u64, extend_data: &[u8; 48]) -> Result<(), TdxAttestError> {
        if !(2..=3).contains(&rtmr_index) {
            return Err(TdxAttestError::RtmrNotExtendable(rtmr_index));
        }
        self.extend_unchecked(rtmr_index, extend_data)
    }

    /// `tdx_att_extend` without our own index check (the library's check then applies); for tests of the mapping.
    pub fn extend_unchecked(
        &self,
        rtmr_index: u64,
        extend_data: &[u8; 48],
    ) -> Result<(), TdxAttestError> {
        let event = TdxRtmrEvent {
            version: RTMR_EVENT_VERSION,
            rtmr_index,
            extend_data: *extend_data,
            event_type: 0,
            event_data_size: 0,
        };
        // SAFETY: `event` is a live packed `tdx_rtmr_event_t` with `event_data_size == 0`, so the library reads no
        // bytes past the fixed header.
        let code = unsafe { (self.extend)(&event) };
        check(code)
    }

    /// `tdx_att_get_supported_att_key_ids`: ask for the count, then fetch that many ids (bounded).
    pub fn supported_att_key_ids(&self) -> Result<Vec<TdxUuid>, TdxAttestError> {
        let mut count: u32 = 0;
        // SAFETY: a null list with a live `count` asks only for the number of ids.
        let code = unsafe { (self.get_supported_att_key_ids)(std::ptr::null_mut(), &mut count) };
        check(code)?;
        if count > MAX_ATT_KEY_IDS {
            return Err(TdxAttestError::TooManyAttKeyIds(count));
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut ids = vec![TdxUuid::default(); count as usize];
        let mut size = count;
        // SAFETY: `ids` holds `size` writable 16-byte packed UUIDs; the library writes at most `*p_list_size`.
        let code = unsafe { (self.get_supported_att_key_ids)(ids.as_mut_ptr(), &mut size) };
        check(code)?;
        if size > count {
            return Err(TdxAttestError::TooManyAttKeyIds(size));
        }
        ids.truncate(size as usize);
        Ok(ids)
    }
}

/// Owns a quote buffer allocated by the library and returns it through `tdx_att_free_quote` on drop.
struct QuoteGuard<'a> {
    lib: &'a TdxAttestLib,
    ptr: *mut u8,
}

impl Drop for QuoteGuard<'_> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` was produced by this library's `tdx_att_get_quote` and has not been freed: the guard is
            // the only owner and frees it exactly once. The return code of free carries no action for us.
            let _ = unsafe { (self.lib.free_quote)(self.ptr) };
            self.ptr = std::ptr::null_mut();
        }
    }
}

/// An [`Attester`] over `libtdx_attest`: the quote is the evidence (its PCK chain travels inside it).
#[derive(Debug)]
pub struct TdxAttestAttester {
    lib: TdxAttestLib,
}

impl TdxAttestAttester {
    /// Wrap a loaded library.
    pub fn new(lib: TdxAttestLib) -> Self {
        Self { lib }
    }

    /// Load the library (see [`TdxAttestLib::load`]).
    pub fn load(path: Option<&Path>) -> Result<Self, LoadError> {
        TdxAttestLib::load(path).map(Self::new)
    }

    /// The loaded library.
    pub fn library(&self) -> &TdxAttestLib {
        &self.lib
    }
}

impl Attester for TdxAttestAttester {
    fn name(&self) -> &str {
        "libtdx_attest"
    }

    fn tee(&self) -> TeeType {
        TeeType::Tdx
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let (quote, _) = self.lib.get_quote(report_data, None)?;
        if TeeType::detect(&quote) != Some(TeeType::Tdx) {
            return Err(AttestError::Failed(format!(
                "libtdx_attest returned {} bytes that are not a TDX quote",
                quote.len()
            )));
        }
        Ok(Evidence {
            tee: TeeType::Tdx,
            raw: quote,
            certs: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_c_code_round_trips_through_its_named_variant() {
        for code in 1u32..=0x0c {
            let e = TdxAttestError::from_code(code).expect("non-zero is an error");
            assert!(
                !matches!(e, TdxAttestError::Unknown(_)),
                "code {code:#x} must have a named variant"
            );
            assert_eq!(e.c_code(), Some(code));
        }
        assert_eq!(TdxAttestError::from_code(0), None);
        assert_eq!(
            TdxAttestError::from_code(0x0d),
            Some(TdxAttestError::Unknown(0x0d))
        );
    }

    #[test]
    fn packed_layouts_match_the_c_header() {
        assert_eq!(std::mem::size_of::<TdxUuid>(), 16);
        assert_eq!(std::mem::size_of::<TdxReportData>(), 64);
        assert_eq!(std::mem::size_of::<TdxReport>(), 1024);
        assert_eq!(std::mem::size_of::<TdxRtmrEvent>(), 4 + 8 + 48 + 4 + 4);
    }

    #[test]
    fn absent_library_is_a_load_error_naming_each_path() {
        let err = TdxAttestLib::load(Some(Path::new("/nonexistent/libtdx_attest.so.1")))
            .expect_err("absent");
        assert_eq!(err.attempts.len(), 1);
        assert!(err.to_string().contains("/nonexistent/libtdx_attest.so.1"));
    }
}
