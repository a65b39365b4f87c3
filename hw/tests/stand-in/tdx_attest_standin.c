/*
 * A stand-in for Intel's libtdx_attest (DCAP tdx_attest.h), compiled by the tests with `cc -shared -fPIC`.
 *
 * It implements the five functions with the header's types and error codes, so our FFI declarations are exercised
 * against a real C ABI. It does not talk to any TEE:
 *   - tdx_att_get_quote returns a quote whose TD report body carries the caller's report data at offset 568
 *     (48-byte header + 520; 574 in a v5 quote, after the 6-byte body descriptor): either a copy of a template file (stand_in_set_template, e.g. a simulator quote) or a
 *     minimal v4 header + body. Every buffer comes from malloc and is counted; tdx_att_free_quote counts frees and
 *     rejects pointers it did not hand out.
 *   - tdx_att_get_report writes the report data into REPORTMACSTRUCT.report_data (offset 128 of the 1024 bytes).
 *   - tdx_att_extend checks the event like the real library and records the extend data.
 *     The template can also come from the environment variable LOCUS_STANDIN_QUOTE_TEMPLATE (read at each call),
 *     for processes the test cannot call into (the agent binary).
 *   - stand_in_set_error(code) makes every following call return `code` (0 restores normal behaviour).
 *   - stand_in_set_empty_quote(1) makes get_quote report success with size 0 but still allocate (our side must
 *     refuse the quote and still free the buffer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma pack(push, 1)
typedef struct { uint8_t d[16]; } tdx_uuid_t;
typedef struct { uint8_t d[64]; } tdx_report_data_t;
typedef struct { uint8_t d[1024]; } tdx_report_t;
typedef struct {
    uint32_t version;
    uint64_t rtmr_index;
    uint8_t extend_data[48];
    uint32_t event_type;
    uint32_t event_data_size;
    uint8_t event_data[];
} tdx_rtmr_event_t;
#pragma pack(pop)

typedef enum {
    TDX_ATTEST_SUCCESS = 0x0000,
    TDX_ATTEST_ERROR_UNEXPECTED = 0x0001,
    TDX_ATTEST_ERROR_INVALID_PARAMETER = 0x0002,
    TDX_ATTEST_ERROR_OUT_OF_MEMORY = 0x0003,
    TDX_ATTEST_ERROR_VSOCK_FAILURE = 0x0004,
    TDX_ATTEST_ERROR_REPORT_FAILURE = 0x0005,
    TDX_ATTEST_ERROR_EXTEND_FAILURE = 0x0006,
    TDX_ATTEST_ERROR_NOT_SUPPORTED = 0x0007,
    TDX_ATTEST_ERROR_QUOTE_FAILURE = 0x0008,
    TDX_ATTEST_ERROR_BUSY = 0x0009,
    TDX_ATTEST_ERROR_DEVICE_FAILURE = 0x000a,
    TDX_ATTEST_ERROR_INVALID_RTMR_INDEX = 0x000b,
    TDX_ATTEST_ERROR_UNSUPPORTED_ATT_KEY_ID = 0x000c,
} tdx_attest_error_t;

static const tdx_uuid_t ECDSA_ID = {{0xe8, 0x6c, 0x04, 0x6e, 0x8c, 0xc4, 0x4d, 0x95,
                                     0x81, 0x73, 0xfc, 0x43, 0xc1, 0xfa, 0x4f, 0x3f}};

#define REPORT_DATA_OFFSET 568
#define MIN_QUOTE 636
#define MAX_LIVE 64

static uint32_t forced_error = 0;
static int empty_quote = 0;
static char template_path[4096] = {0};
static uint64_t allocs = 0;
static uint64_t frees = 0;
static uint64_t bad_frees = 0;
static void *live[MAX_LIVE];
static uint8_t last_extend[48];
static uint64_t last_extend_index = 0;
static uint64_t extends = 0;

void stand_in_set_error(uint32_t code) { forced_error = code; }
void stand_in_set_empty_quote(int on) { empty_quote = on; }
void stand_in_set_template(const char *path) {
    if (path == NULL) {
        template_path[0] = 0;
    } else {
        strncpy(template_path, path, sizeof(template_path) - 1);
        template_path[sizeof(template_path) - 1] = 0;
    }
}
uint64_t stand_in_allocs(void) { return allocs; }
uint64_t stand_in_frees(void) { return frees; }
uint64_t stand_in_bad_frees(void) { return bad_frees; }
uint64_t stand_in_extends(void) { return extends; }
uint64_t stand_in_last_extend(uint8_t out[48]) {
    memcpy(out, last_extend, 48);
    return last_extend_index;
}

static int track(void *p) {
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live[i] == NULL) {
            live[i] = p;
            return 1;
        }
    }
    return 0;
}

static const char *template_source(void) {
    if (template_path[0]) return template_path;
    const char *env = getenv("LOCUS_STANDIN_QUOTE_TEMPLATE");
    return (env && env[0]) ? env : NULL;
}

static uint8_t *load_template(const char *path, uint32_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long len = ftell(f);
    if (len < MIN_QUOTE || len > (1 << 20)) { fclose(f); return NULL; }
    rewind(f);
    uint8_t *buf = malloc((size_t)len);
    if (!buf) { fclose(f); return NULL; }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) { free(buf); fclose(f); return NULL; }
    fclose(f);
    *size = (uint32_t)len;
    return buf;
}

tdx_attest_error_t tdx_att_get_quote(const tdx_report_data_t *p_tdx_report_data, const tdx_uuid_t att_key_id_list[],
                                     uint32_t list_size, tdx_uuid_t *p_att_key_id, uint8_t **pp_quote,
                                     uint32_t *p_quote_size, uint32_t flags) {
    if (forced_error) return (tdx_attest_error_t)forced_error;
    if (!p_tdx_report_data || !pp_quote || !p_quote_size || flags != 0) return TDX_ATTEST_ERROR_INVALID_PARAMETER;
    if ((att_key_id_list == NULL) != (list_size == 0)) return TDX_ATTEST_ERROR_INVALID_PARAMETER;
    if (att_key_id_list) {
        int found = 0;
        for (uint32_t i = 0; i < list_size; i++)
            if (memcmp(&att_key_id_list[i], &ECDSA_ID, sizeof(ECDSA_ID)) == 0) found = 1;
        if (!found) return TDX_ATTEST_ERROR_UNSUPPORTED_ATT_KEY_ID;
    }
    uint8_t *quote;
    uint32_t size;
    const char *tpl = template_source();
    if (tpl) {
        quote = load_template(tpl, &size);
        if (!quote) return TDX_ATTEST_ERROR_QUOTE_FAILURE;
    } else {
        size = MIN_QUOTE;
        quote = calloc(1, size);
        if (!quote) return TDX_ATTEST_ERROR_OUT_OF_MEMORY;
        quote[0] = 4;    /* version 4, LE */
        quote[2] = 2;    /* attestation key type: ECDSA-256 */
        quote[4] = 0x81; /* tee_type TDX */
    }
    /* v4: header 48 + TD report body; v5: header 48 + body descriptor (type u16, size u32) + body. */
    uint16_t version = (uint16_t)(quote[0] | (quote[1] << 8));
    uint32_t offset = version == 5 ? REPORT_DATA_OFFSET + 6 : REPORT_DATA_OFFSET;
    if (offset + 64 > size) { free(quote); return TDX_ATTEST_ERROR_QUOTE_FAILURE; }
    memcpy(quote + offset, p_tdx_report_data->d, 64);
    if (!track(quote)) { free(quote); return TDX_ATTEST_ERROR_OUT_OF_MEMORY; }
    allocs++;
    if (p_att_key_id) *p_att_key_id = ECDSA_ID;
    *pp_quote = quote;
    *p_quote_size = empty_quote ? 0 : size;
    return TDX_ATTEST_SUCCESS;
}

tdx_attest_error_t tdx_att_free_quote(uint8_t *p_quote) {
    if (p_quote == NULL) return TDX_ATTEST_SUCCESS;
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live[i] == p_quote) {
            live[i] = NULL;
            free(p_quote);
            frees++;
            return TDX_ATTEST_SUCCESS;
        }
    }
    bad_frees++;
    return TDX_ATTEST_ERROR_INVALID_PARAMETER;
}

tdx_attest_error_t tdx_att_get_report(const tdx_report_data_t *p_tdx_report_data, tdx_report_t *p_tdx_report) {
    if (forced_error) return (tdx_attest_error_t)forced_error;
    if (!p_tdx_report) return TDX_ATTEST_ERROR_INVALID_PARAMETER;
    memset(p_tdx_report->d, 0, sizeof(p_tdx_report->d));
    p_tdx_report->d[0] = 0x81; /* REPORTTYPE.type = TDX */
    if (p_tdx_report_data) memcpy(p_tdx_report->d + 128, p_tdx_report_data->d, 64);
    return TDX_ATTEST_SUCCESS;
}

tdx_attest_error_t tdx_att_extend(const tdx_rtmr_event_t *p_rtmr_event) {
    if (forced_error) return (tdx_attest_error_t)forced_error;
    if (!p_rtmr_event || p_rtmr_event->version != 1) return TDX_ATTEST_ERROR_INVALID_PARAMETER;
    if (p_rtmr_event->event_data_size != 0) return TDX_ATTEST_ERROR_NOT_SUPPORTED;
    if (p_rtmr_event->rtmr_index < 2 || p_rtmr_event->rtmr_index > 3) return TDX_ATTEST_ERROR_INVALID_RTMR_INDEX;
    memcpy(last_extend, p_rtmr_event->extend_data, 48);
    last_extend_index = p_rtmr_event->rtmr_index;
    extends++;
    return TDX_ATTEST_SUCCESS;
}

tdx_attest_error_t tdx_att_get_supported_att_key_ids(tdx_uuid_t *p_att_key_id_list, uint32_t *p_list_size) {
    if (forced_error) return (tdx_attest_error_t)forced_error;
    if (!p_list_size) return TDX_ATTEST_ERROR_INVALID_PARAMETER;
    if (p_att_key_id_list) {
        if (*p_list_size < 1) return TDX_ATTEST_ERROR_INVALID_PARAMETER;
        p_att_key_id_list[0] = ECDSA_ID;
    }
    *p_list_size = 1;
    return TDX_ATTEST_SUCCESS;
}
