// A VMM stand-in for make kernel-test: it runs under `bindery vmm attach`, receives a VM's
// descriptors the way systemd passes sockets (LISTEN_FDS from 3, LISTEN_FDNAMES), and drives
// QEMU's edu device through them: edu's DMA engine copies a pattern from guest memory into
// its buffer and back to another guest address, through the IOMMU mappings Bindery made.
// It opens nothing itself: guest memory, the device and the container all come over the socket.
//
// vmm-standin STATUS STOP: round trips until the file STOP exists, writing "rounds N failures
// F" to STATUS after each; exits 0 when every round trip matched.
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EDU_BUFFER 0x40000ULL
#define LENGTH 2048            /* QEMU 7.2's edu aborts on a 4096-byte transfer */
#define PATTERN_OFFSET 0x10000ULL
#define BACK_OFFSET 0x11000ULL

static int device_fd = -1;
static off_t bar0;

static int fail(const char *what) {
    fprintf(stderr, "vmm-standin: %s: %s\n", what, strerror(errno));
    return 1;
}

static int edu_write(off_t reg, uint64_t value) { return pwrite(device_fd, &value, 8, bar0 + reg) == 8 ? 0 : -1; }
static int edu_read(off_t reg, uint64_t *value) { return pread(device_fd, value, 8, bar0 + reg) == 8 ? 0 : -1; }

/* One DMA transfer; edu completes on a timer, so wait for the start bit to clear. */
static int transfer(uint64_t source, uint64_t destination, int to_ram) {
    if (edu_write(0x80, source) || edu_write(0x88, destination) || edu_write(0x90, LENGTH) || edu_write(0x98, to_ram ? 3 : 1)) return -1;
    for (int i = 0; i < 10000; i++) {   /* a state to wait for; the bound only stops a dead device hanging the test */
        uint64_t command;
        if (edu_read(0x98, &command)) return -1;
        if (!(command & 1)) return 0;
        usleep(1000);
    }
    errno = ETIMEDOUT;
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: vmm-standin STATUS STOP\n"); return 2; }
    const char *count_text = getenv("LISTEN_FDS"), *names = getenv("LISTEN_FDNAMES"), *pid = getenv("LISTEN_PID");
    if (!count_text || !names || !pid || atoi(pid) != getpid()) { fprintf(stderr, "vmm-standin: no LISTEN_FDS for this process\n"); return 2; }
    int count = atoi(count_text), memory_fd = -1, container_fd = -1;
    char *copy = strdup(names), *save = NULL;
    int index = 0;
    for (char *name = strtok_r(copy, ":", &save); name && index < count; name = strtok_r(NULL, ":", &save), index++) {
        int fd = 3 + index;
        if (!strncmp(name, "vfio-device.", 12) || !strncmp(name, "vfio-cdev.", 10)) { if (device_fd < 0) device_fd = fd; }
        else if (!strcmp(name, "guest-memory.0")) memory_fd = fd;
        else if (!strcmp(name, "vfio-container") || !strcmp(name, "iommufd")) container_fd = fd;
        printf("vmm-standin: fd %d is %s\n", fd, name);
    }
    if (device_fd < 0 || memory_fd < 0 || container_fd < 0) { fprintf(stderr, "vmm-standin: expected a container, a device and guest-memory.0 in %s\n", names); return 2; }

    struct stat info;
    if (fstat(memory_fd, &info)) return fail("fstat guest memory");
    uint8_t *memory = mmap(NULL, info.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, memory_fd, 0);
    if (memory == MAP_FAILED) return fail("mmap guest memory");

    struct vfio_region_info region = { .argsz = sizeof region, .index = VFIO_PCI_BAR0_REGION_INDEX };
    if (ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &region)) return fail("VFIO_DEVICE_GET_REGION_INFO(BAR0)");
    bar0 = region.offset;
    struct vfio_region_info config = { .argsz = sizeof config, .index = VFIO_PCI_CONFIG_REGION_INDEX };
    if (ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &config)) return fail("VFIO_DEVICE_GET_REGION_INFO(config)");
    uint16_t command;
    if (pread(device_fd, &command, 2, config.offset + 4) != 2) return fail("reading the PCI command register");
    command |= 0x6;   /* memory space, bus master */
    if (pwrite(device_fd, &command, 2, config.offset + 4) != 2) return fail("writing the PCI command register");

    long rounds = 0, failures = 0;
    while (access(argv[2], F_OK) != 0) {
        uint8_t seed = (uint8_t)rounds;
        for (int i = 0; i < LENGTH; i++) memory[PATTERN_OFFSET + i] = (uint8_t)(i * 7 + seed);
        memset(memory + BACK_OFFSET, 0, LENGTH);
        int ok = transfer(PATTERN_OFFSET, EDU_BUFFER, 0) == 0 && transfer(EDU_BUFFER, BACK_OFFSET, 1) == 0
            && memcmp(memory + PATTERN_OFFSET, memory + BACK_OFFSET, LENGTH) == 0;
        rounds++;
        if (!ok) { failures++; fprintf(stderr, "vmm-standin: round trip %ld failed (%s)\n", rounds, strerror(errno)); }
        char path[4096];
        snprintf(path, sizeof path, "%s.tmp", argv[1]);
        FILE *out = fopen(path, "w");
        if (out) { fprintf(out, "rounds %ld failures %ld\n", rounds, failures); fclose(out); rename(path, argv[1]); }
    }
    printf("vmm-standin: %ld DMA round trips, %ld failed\n", rounds, failures);
    return failures == 0 && rounds > 0 ? 0 : 1;
}
