/* A C rendering of aya-log's eBPF side (aya-log-ebpf), perf-array flavour.
 *
 * Wire format (aya-log-common as used by the DragonOS syscall_ebpf example):
 * a record is a header of six tag-length-value fields followed by num_args
 * argument TLVs. Every tag and length is a native-endian usize (8 bytes here):
 *   header: Target=1 (str), Level=2 (usize), Module=3 (str), File=4 (str),
 *           Line=5 (u32), NumArgs=6 (usize)
 *   args:   DisplayHint=0 (u8 hint: Default=1, LowerHex=2, ...), U64=9,
 *           Usize=10, Str=16 (literal fragments of the format string)
 * The record is built in AYA_LOG_BUF (a one-entry PERCPU_ARRAY of 8 KiB, so
 * it needs no stack) and sent with bpf_perf_event_output(ctx, &AYA_LOGS,
 * BPF_F_CURRENT_CPU, buf, len). */
#ifndef AYA_LOG_H
#define AYA_LOG_H

#define AYA_LOG_BUF_CAPACITY 8192

enum aya_record_field { AYA_TARGET = 1, AYA_LEVEL, AYA_MODULE, AYA_FILE, AYA_LINE, AYA_NUM_ARGS };
enum aya_level { AYA_ERROR = 1, AYA_WARN, AYA_INFO, AYA_DEBUG, AYA_TRACE };
enum aya_argument { AYA_ARG_DISPLAY_HINT = 0, AYA_ARG_U64 = 9, AYA_ARG_USIZE = 10, AYA_ARG_STR = 16 };
enum aya_display_hint { AYA_HINT_DEFAULT = 1 };

struct aya_log_buf {
	__u8 buf[AYA_LOG_BUF_CAPACITY] __attribute__((aligned(8)));
};

/* Append one TLV at offset *off. All sizes are compile-time constants, so
 * clang turns the copies into plain stores and the verifier sees fixed
 * offsets into the map value. */
static __always_inline void aya_tlv(__u8 *buf, __u32 *off, __u64 tag, const void *val, __u64 len)
{
	__builtin_memcpy(buf + *off, &tag, 8);
	__builtin_memcpy(buf + *off + 8, &len, 8);
	__builtin_memcpy(buf + *off + 16, val, len);
	*off += 16 + len;
}

#define AYA_STR(buf, off, tag, s) aya_tlv(buf, off, tag, s, sizeof(s) - 1)

#endif
