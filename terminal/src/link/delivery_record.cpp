// delivery_record: the per-stream user position a restarted qlinkd resumes from, in a shared-mapped file.
#include "qlink/terminal/link_engine.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace qlink::terminal {

namespace {

// Layout (host byte order, every field a naturally aligned u64):
//   [0]    tag (the constant `magic`)
//   [64 + 128 * stream]  selector (0: never written, 1: copy A valid, 2: copy B valid)
//                        copy A at +8, copy B at +48: w_session, w_offset, i_session, i_offset, check
constexpr std::size_t file_bytes = 4096;
constexpr std::uint64_t magic = 0x31305345524C4451ull;  // version 1 of this layout
constexpr std::size_t stream_base = 64, stream_stride = 128, copy_a = 8, copy_b = 48;

std::uint64_t mix(std::uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// A damaged or foreign copy must not pass for a position: the check covers every field.
std::uint64_t check_of(const std::uint64_t f[4])
{
    std::uint64_t h = 0x51444C52ull;
    for (int i = 0; i < 4; ++i) {
        h = mix(h ^ f[i]);
    }
    return h;
}

std::uint64_t load(const std::uint8_t* p) { return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(const_cast<std::uint8_t*>(p))).load(std::memory_order_acquire); }

void put(std::uint8_t* p, std::uint64_t v, std::memory_order o = std::memory_order_relaxed)
{
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(p)).store(v, o);
}

[[noreturn]] void fail(const std::string& path, const std::string& why)
{
    throw std::runtime_error("delivery record " + path + ": " + why);
}

}  // namespace

delivery_record::delivery_record(const std::string& path) : path_(path)
{
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        fail(path, std::string("cannot open: ") + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
        const int e = errno;
        ::close(fd_);
        fail(path, std::string("cannot stat: ") + std::strerror(e));
    }
    if (st.st_size != 0 && st.st_size != static_cast<off_t>(file_bytes)) {
        ::close(fd_);
        fail(path, "is " + std::to_string(st.st_size) + " bytes, not a delivery record (" + std::to_string(file_bytes) +
                       "); move it away to start without a resume point");
    }
    if (st.st_size == 0 && ::ftruncate(fd_, static_cast<off_t>(file_bytes)) != 0) {
        const int e = errno;
        ::close(fd_);
        fail(path, std::string("cannot size: ") + std::strerror(e));
    }
    void* m = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) {
        const int e = errno;
        ::close(fd_);
        fail(path, std::string("cannot map: ") + std::strerror(e));
    }
    map_ = static_cast<std::uint8_t*>(m);
    const std::uint64_t head = load(map_);
    if (head == 0) {
        // New (or created and killed before the magic went in: then all of it is still zero).
        bool zero = true;
        for (std::size_t i = 0; i < file_bytes && zero; ++i) {
            zero = map_[i] == 0;
        }
        if (!zero) {
            ::munmap(map_, file_bytes);
            ::close(fd_);
            fail(path, "has no delivery-record header; move it away to start without a resume point");
        }
        put(map_, magic, std::memory_order_release);
    } else if (head != magic) {
        ::munmap(map_, file_bytes);
        ::close(fd_);
        fail(path, "is not a delivery record (bad magic); move it away to start without a resume point");
    }
    for (std::size_t s = 0; s < link_max_streams; ++s) {
        const std::uint8_t* b = map_ + stream_base + s * stream_stride;
        const std::uint64_t sel = load(b);
        if (sel != 1 && sel != 2) {
            continue;  // never written (0); anything else is not ours: no resume point
        }
        const std::uint8_t* c = b + (sel == 1 ? copy_a : copy_b);
        std::uint64_t f[4];
        for (int i = 0; i < 4; ++i) {
            f[i] = load(c + 8 * i);
        }
        if (load(c + 32) != check_of(f) || f[0] > 0xFFFFFFFFull || f[2] > 0xFFFFFFFFull) {
            continue;
        }
        entry e;
        e.written = {static_cast<std::uint32_t>(f[0]), f[1]};
        e.intended = {static_cast<std::uint32_t>(f[2]), f[3]};
        loaded_[s] = e;
        current_[s] = e;
    }
}

delivery_record::~delivery_record()
{
    if (map_ != nullptr) {
        ::msync(map_, file_bytes, MS_SYNC);
        ::munmap(map_, file_bytes);
    }
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

std::optional<delivery_record::entry> delivery_record::loaded(std::uint8_t stream) const
{
    return stream < link_max_streams ? loaded_[stream] : std::nullopt;
}

void delivery_record::store(std::uint8_t stream, const entry& e)
{
    std::uint8_t* b = map_ + stream_base + std::size_t{stream} * stream_stride;
    const std::uint64_t sel = load(b);
    const std::uint64_t next = sel == 1 ? 2 : 1;  // fill the copy the selector does not name
    std::uint8_t* c = b + (next == 1 ? copy_a : copy_b);
    const std::uint64_t f[4] = {e.written.sender_session, e.written.offset, e.intended.sender_session, e.intended.offset};
    for (int i = 0; i < 4; ++i) {
        put(c + 8 * i, f[i]);
    }
    put(c + 32, check_of(f));
    // Release: the copy's stores are in the page before the selector names it (x86 keeps store
    // order anyway; this keeps the compiler from moving them).
    put(b, next, std::memory_order_release);
    current_[stream] = e;
}

void delivery_record::intend(std::uint8_t stream, stream_position after)
{
    if (stream >= link_max_streams) {
        return;
    }
    entry e = current_[stream];
    e.intended = after;
    store(stream, e);
}

void delivery_record::commit(std::uint8_t stream, stream_position now)
{
    if (stream >= link_max_streams) {
        return;
    }
    store(stream, entry{now, now});
}

bool delivery_record::sync() { return ::msync(map_, file_bytes, MS_SYNC) == 0; }

}  // namespace qlink::terminal
