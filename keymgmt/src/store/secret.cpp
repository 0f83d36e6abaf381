// Key IDs (UUID text form) and secret_bytes (secure-heap buffer cleansed on release).
#include "qlink/keymgmt/key_store.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <cstring>
#include <new>
#include <utility>

namespace qlink::keymgmt {

std::string key_id_to_string(const key_id& id)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out.push_back('-');
        }
        out.push_back(hex[id[i] >> 4]);
        out.push_back(hex[id[i] & 0xf]);
    }
    return out;
}

std::optional<key_id> parse_key_id(std::string_view text)
{
    if (text.size() != 36) {
        return std::nullopt;
    }
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    };
    key_id id{};
    std::size_t pos = 0;
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (text[pos] != '-') {
                return std::nullopt;
            }
            ++pos;
        }
        const int hi = nibble(text[pos]);
        const int lo = nibble(text[pos + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        id[i] = static_cast<std::uint8_t>((hi << 4) | lo);
        pos += 2;
    }
    return id;
}

int partition_of(const key_id& id) { return id[15] & 1; }

secret_bytes::secret_bytes(std::size_t size)
{
    if (size == 0) {
        return;
    }
    // OPENSSL_secure_zalloc falls back to the normal heap when no secure heap is initialised,
    // but returns null once an initialised one is full (e.g. many hand-out pools): then the
    // normal heap too (still cleansed on release; OPENSSL_secure_free frees either kind). The
    // mark keeps the failed allocation's error off this thread's queue, where a TLS call would
    // later take it for its own.
    ERR_set_mark();
    data_ = static_cast<std::uint8_t*>(OPENSSL_secure_zalloc(size));
    if (data_ == nullptr) {
        data_ = static_cast<std::uint8_t*>(OPENSSL_zalloc(size));
    }
    ERR_pop_to_mark();
    if (data_ == nullptr) {
        throw std::bad_alloc();
    }
    size_ = size;
}

secret_bytes::secret_bytes(std::span<const std::uint8_t> bytes) : secret_bytes(bytes.size())
{
    if (!bytes.empty()) {
        std::memcpy(data_, bytes.data(), bytes.size());
    }
}

secret_bytes::~secret_bytes() { release(); }

secret_bytes::secret_bytes(secret_bytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0))
{
}

secret_bytes& secret_bytes::operator=(secret_bytes&& other) noexcept
{
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void secret_bytes::truncate(std::size_t n)
{
    if (n < size_) {
        OPENSSL_cleanse(data_ + n, size_ - n);
        size_ = n;
    }
}

void secret_bytes::release()
{
    if (data_ != nullptr) {
        // The allocation size is needed by clear_free; truncate() only shrinks the visible size
        // and has already cleansed the tail, so cleansing the visible part is enough here.
        OPENSSL_cleanse(data_, size_);
        OPENSSL_secure_free(data_);
    }
    data_ = nullptr;
    size_ = 0;
}

}  // namespace qlink::keymgmt
