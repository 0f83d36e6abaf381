// Payload framing and stream formats for `qlink encode` / `qlink decode`.
#include "cli/stream_file.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace qlink::terminal::cli {

std::optional<stream_format> parse_stream_format(std::string_view s) {
    if (s == "bits") return stream_format::bits;
    if (s == "f32") return stream_format::f32;
    if (s == "i8") return stream_format::i8;
    return std::nullopt;
}

std::string_view to_string(stream_format f) {
    switch (f) {
    case stream_format::bits: return "bits";
    case stream_format::f32: return "f32";
    case stream_format::i8: return "i8";
    }
    return "?";
}

namespace {

static_assert(std::endian::native == std::endian::little, "f32 streams are little endian; add a byte swap here");

class stream_writer {
public:
    stream_writer(const std::string& path, stream_format fmt) : f_(path, std::ios::binary | std::ios::trunc), fmt_(fmt) {}
    bool good() const { return f_.good(); }

    void write(std::span<const std::uint8_t> bits) {
        switch (fmt_) {
        case stream_format::bits:
            for (std::uint8_t b : bits) {
                acc_ = static_cast<std::uint8_t>((acc_ << 1) | (b & 1));
                if (++n_ == 8) {
                    f_.put(static_cast<char>(acc_));
                    acc_ = 0;
                    n_ = 0;
                }
            }
            break;
        case stream_format::f32:
            buf_.resize(bits.size() * 4);
            for (std::size_t i = 0; i < bits.size(); ++i) {
                const float v = bits[i] ? -1.0f : 1.0f;
                std::memcpy(buf_.data() + 4 * i, &v, 4);
            }
            f_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
            break;
        case stream_format::i8:
            buf_.resize(bits.size());
            for (std::size_t i = 0; i < bits.size(); ++i) buf_[i] = static_cast<char>(bits[i] ? -127 : 127);
            f_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
            break;
        }
    }
    bool close() {
        if (fmt_ == stream_format::bits && n_ > 0) f_.put(static_cast<char>(acc_ << (8 - n_)));
        f_.close();
        return !f_.fail();
    }

private:
    std::ofstream f_;
    stream_format fmt_;
    std::vector<char> buf_;
    std::uint8_t acc_ = 0;
    int n_ = 0;
};

// Hard bits carry no reliability; any fixed magnitude serves the Viterbi decoder.
constexpr modem::llr_t hard_llr = 32;

// Converts stream bytes [from, to) (in symbols) into LLRs.
void to_llr(const std::vector<std::uint8_t>& raw, stream_format fmt, std::size_t from, std::span<modem::llr_t> out,
            float f32_scale) {
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::size_t s = from + i;
        switch (fmt) {
        case stream_format::bits:
            out[i] = modem::bit_to_llr((raw[s >> 3] >> (7 - (s & 7))) & 1, hard_llr);
            break;
        case stream_format::f32: {
            float v;
            std::memcpy(&v, raw.data() + 4 * s, 4);
            out[i] = std::isfinite(v) ? modem::quantize_llr(v * f32_scale) : modem::llr_erasure;
            break;
        }
        case stream_format::i8:
            out[i] = modem::saturate_llr(static_cast<std::int8_t>(raw[s]));
            break;
        }
    }
}

}  // namespace

bool read_file_bytes(const std::string& path, std::vector<std::uint8_t>& data, std::string& error) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        error = "cannot open '" + path + "' for reading";
        return false;
    }
    data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (f.bad()) {
        error = "error reading '" + path + "'";
        return false;
    }
    return true;
}

bool write_file_bytes(const std::string& path, std::span<const std::uint8_t> data, std::string& error) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) {
        error = "cannot open '" + path + "' for writing";
        return false;
    }
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    f.close();
    if (f.fail()) {
        error = "error writing '" + path + "'";
        return false;
    }
    return true;
}

std::uint64_t file_frame_count(std::size_t payload_bytes, std::size_t data_bytes) {
    const std::size_t per_frame = std::min<std::size_t>(data_bytes - file_frame_header, 0xFFFF);
    return std::max<std::uint64_t>(1, (payload_bytes + per_frame - 1) / per_frame);
}

void fill_file_frame(std::span<const std::uint8_t> payload, std::uint64_t f, std::span<std::uint8_t> data) {
    const std::size_t per_frame = std::min<std::size_t>(data.size() - file_frame_header, 0xFFFF);
    const std::size_t off = static_cast<std::size_t>(f) * per_frame;
    const std::size_t len = std::min(per_frame, payload.size() - std::min(off, payload.size()));
    std::fill(data.begin(), data.end(), std::uint8_t{0});
    for (int k = 0; k < 4; ++k) data[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(f >> (24 - 8 * k));
    data[4] = static_cast<std::uint8_t>(len >> 8);
    data[5] = static_cast<std::uint8_t>(len);
    if (len) std::copy_n(payload.begin() + static_cast<std::ptrdiff_t>(off), len, data.begin() + file_frame_header);
}

void file_assembler::take(std::span<const std::uint8_t> d, bool ok) {
    if (!ok || d.size() < file_frame_header) {
        ++frames_failed;
        return;
    }
    const std::uint32_t seq = (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) | (std::uint32_t{d[2]} << 8) | d[3];
    const std::size_t len = (std::size_t{d[4]} << 8) | d[5];
    if (len > d.size() - file_frame_header) {
        last_frame_short = true;
        ++frames_failed;
        return;
    }
    if (frames_ok > 0 && seq <= last_seq) {
        ++duplicates;
        return;
    }
    if (frames_ok == 0)
        first_seq = seq;
    else
        missing += seq - last_seq - 1;
    last_seq = seq;
    ++frames_ok;
    payload.insert(payload.end(), d.begin() + file_frame_header, d.begin() + static_cast<std::ptrdiff_t>(file_frame_header + len));
}

std::optional<encode_summary> encode_file(const modem::chain_profile& profile, const std::string& in,
                                          const std::string& out, stream_format fmt, std::string& error) {
    std::vector<std::uint8_t> payload;
    if (!read_file_bytes(in, payload, error)) return std::nullopt;
    modem::chain_encoder enc(profile);
    const std::size_t db = enc.data_bytes();
    const std::uint64_t frames = file_frame_count(payload.size(), db);
    if (frames > 0xFFFFFFFFull) {
        error = "payload too large for 32-bit frame sequence numbers";
        return std::nullopt;
    }
    stream_writer w(out, fmt);
    if (!w.good()) {
        error = "cannot open '" + out + "' for writing";
        return std::nullopt;
    }
    encode_summary s;
    s.payload_bytes = payload.size();
    s.frames = frames;
    std::vector<std::uint8_t> data(db), bits(std::max(enc.max_frame_bits(), enc.max_finish_bits()));
    for (std::uint64_t f = 0; f < frames; ++f) {
        fill_file_frame(payload, f, data);
        const auto r = enc.encode(data, bits);
        if (!r.ok) {
            error = r.error;
            return std::nullopt;
        }
        w.write(std::span<const std::uint8_t>(bits).first(r.bits));
        s.channel_bits += r.bits;
    }
    const auto r = enc.finish(bits);
    w.write(std::span<const std::uint8_t>(bits).first(r.bits));
    s.channel_bits += r.bits;
    if (!w.close()) {
        error = "error writing '" + out + "'";
        return std::nullopt;
    }
    return s;
}

std::optional<decode_summary> decode_file(const modem::chain_profile& profile, const std::string& in,
                                          const std::string& out, stream_format fmt, std::string& error) {
    std::vector<std::uint8_t> raw;
    if (!read_file_bytes(in, raw, error)) return std::nullopt;
    std::size_t symbols = 0;
    switch (fmt) {
    case stream_format::bits: symbols = raw.size() * 8; break;
    case stream_format::f32:
        if (raw.size() % 4 != 0) {
            error = "'" + in + "' is not a whole number of float32 values (" + std::to_string(raw.size()) + " bytes)";
            return std::nullopt;
        }
        symbols = raw.size() / 4;
        break;
    case stream_format::i8: symbols = raw.size(); break;
    }
    // Soft float symbols come in any scale: map the mean magnitude of the
    // first 64k to 32, which leaves headroom below the int8 limit.
    float scale = 1.0f;
    if (fmt == stream_format::f32) {
        double sum = 0;
        std::size_t n = 0;
        for (std::size_t i = 0; i < std::min<std::size_t>(symbols, 65536); ++i) {
            float v;
            std::memcpy(&v, raw.data() + 4 * i, 4);
            if (std::isfinite(v)) {
                sum += std::fabs(v);
                ++n;
            }
        }
        if (n > 0 && sum > 0) scale = static_cast<float>(32.0 * static_cast<double>(n) / sum);
    }

    modem::chain_decoder::config c;
    c.profile = profile;
    modem::chain_decoder dec(c);
    const std::size_t db = dec.data_bytes();
    const std::size_t cap = dec.frames_per_push();
    std::vector<std::uint8_t> frames(cap * db);
    std::vector<modem::chain_frame_report> reps(cap);
    std::vector<modem::llr_t> soft(65536);
    file_assembler fa;
    auto take = [&](const modem::chain_decoder::result& r) {
        for (std::size_t f = 0; f < r.frames; ++f) fa.take(std::span<const std::uint8_t>(frames).subspan(f * db, db), reps[f].ok);
    };

    for (std::size_t pos = 0; pos < symbols;) {
        const std::size_t n = std::min(soft.size(), symbols - pos);
        to_llr(raw, fmt, pos, std::span(soft).first(n), scale);
        if (const auto r = dec.push_all(std::span<const modem::llr_t>(soft).first(n), frames, reps, take); !r.ok) {
            error = r.error ? r.error : "decoder error";
            return std::nullopt;
        }
        pos += n;
    }
    take(dec.finish(frames, reps));
    decode_summary s;
    s.counters = dec.counters();
    s.payload_bytes = fa.payload.size();
    s.frames_ok = fa.frames_ok;
    s.frames_failed = fa.frames_failed;
    s.missing = fa.missing;
    s.duplicates = fa.duplicates;
    s.first_seq = fa.first_seq;
    s.last_seq = fa.last_seq;
    s.last_frame_short = fa.last_frame_short;

    if (!write_file_bytes(out, fa.payload, error)) return std::nullopt;
    return s;
}

}  // namespace qlink::terminal::cli
