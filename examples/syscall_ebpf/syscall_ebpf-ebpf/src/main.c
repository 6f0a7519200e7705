// SPDX-License-Identifier: GPL-2.0
/* syscall_ebpf: count syscalls by number, as DragonOS's Aya example does.
 *
 * Attached as a kprobe to the kernel function
 *   sys_enter(struct pt_regs *regs, long id)
 * so the syscall number arrives in the second argument register, rsi.
 * Write (1) is skipped. Each other syscall increments SYSCALL_LIST[id] and
 * logs "[{}] invoke syscall {}" with bpf_ktime_get_ns() through aya-log.
 *
 * The maps use Aya's legacy 28-byte bpf_map_def in the "maps" section.
 * Rebuild: see ../Makefile (python ../xtask/xtask.py build-ebpf). */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../../syscall_ebpf-common/syscall_ebpf_common.h"
#include "aya_log.h"

/* aya-obj's bpf_map_def: libbpf's 20 bytes plus Aya's id and pinning. */
struct bpf_map_def {
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	__u32 id;
	__u32 pinning;
};

/* x86-64 struct pt_regs (arch/x86/include/asm/ptrace.h). */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct bpf_map_def SEC("maps") SYSCALL_LIST = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(syscall_key_t),
	.value_size = sizeof(syscall_count_t),
	.max_entries = SYSCALL_LIST_MAX_ENTRIES,
};

struct bpf_map_def SEC("maps") AYA_LOG_BUF = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(struct aya_log_buf),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") AYA_LOGS = {
	.type = BPF_MAP_TYPE_PERF_EVENT_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 0, /* the loader makes it one slot per possible CPU */
};

static __always_inline void log_invoke(struct pt_regs *ctx, __u64 time, __u64 syscall_num)
{
	__u32 zero = 0;
	struct aya_log_buf *log = bpf_map_lookup_elem(&AYA_LOG_BUF, &zero);
	__u64 level = AYA_INFO, num_args = 6;
	__u32 line = __LINE__, off = 0;
	__u8 hint = AYA_HINT_DEFAULT;

	if (!log)
		return;
	AYA_STR(log->buf, &off, AYA_TARGET, "syscall_ebpf");
	aya_tlv(log->buf, &off, AYA_LEVEL, &level, 8);
	AYA_STR(log->buf, &off, AYA_MODULE, "syscall_ebpf");
	AYA_STR(log->buf, &off, AYA_FILE, "src/main.c");
	aya_tlv(log->buf, &off, AYA_LINE, &line, 4);
	aya_tlv(log->buf, &off, AYA_NUM_ARGS, &num_args, 8);
	AYA_STR(log->buf, &off, AYA_ARG_STR, "[");
	aya_tlv(log->buf, &off, AYA_ARG_DISPLAY_HINT, &hint, 1);
	aya_tlv(log->buf, &off, AYA_ARG_U64, &time, 8);
	AYA_STR(log->buf, &off, AYA_ARG_STR, "] invoke syscall ");
	aya_tlv(log->buf, &off, AYA_ARG_DISPLAY_HINT, &hint, 1);
	aya_tlv(log->buf, &off, AYA_ARG_USIZE, &syscall_num, 8);
	bpf_perf_event_output(ctx, &AYA_LOGS, BPF_F_CURRENT_CPU, log->buf, off);
}

SEC("kprobe")
int syscall_ebpf(struct pt_regs *ctx)
{
	/* first arg -> rdi, second arg -> rsi */
	__u32 syscall_num = (__u32)ctx->si;
	syscall_count_t one = 1, *count;

	if (syscall_num == SYSCALL_WRITE)
		return 0;
	count = bpf_map_lookup_elem(&SYSCALL_LIST, &syscall_num);
	if (count) {
		syscall_count_t next = *count + 1;
		bpf_map_update_elem(&SYSCALL_LIST, &syscall_num, &next, BPF_ANY);
	} else {
		bpf_map_update_elem(&SYSCALL_LIST, &syscall_num, &one, BPF_ANY);
	}
	log_invoke(ctx, bpf_ktime_get_ns(), syscall_num);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
