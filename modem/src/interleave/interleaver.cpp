// Block and convolutional (Forney) channel interleavers, streaming with fixed delay.
#include "qlink/modem/interleaver.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace qlink::modem {

std::string_view to_string(interleaver_kind k) {
    switch (k) {
    case interleaver_kind::none: return "none";
    case interleaver_kind::block: return "block";
    case interleaver_kind::convolutional: return "convolutional";
    }
    return "?";
}

namespace {

constexpr std::size_t max_memory = std::size_t{1} << 30;

const char* const size_mismatch = "interleaver: in and out must have the same size";

void validate(const interleaver_config& c) {
    switch (c.kind) {
    case interleaver_kind::none: return;
    case interleaver_kind::block:
        if (c.rows == 0 || c.cols == 0) throw std::invalid_argument("block interleaver: rows and cols must be >= 1");
        if (c.rows > max_memory / c.cols)
            throw std::invalid_argument("block interleaver: rows*cols above 1 GiB");
        return;
    case interleaver_kind::convolutional:
        if (c.branches < 2) throw std::invalid_argument("convolutional interleaver: branches must be >= 2");
        if (c.unit == 0) throw std::invalid_argument("convolutional interleaver: unit (delay) must be >= 1");
        if (c.branches > 65536 || c.unit > max_memory / c.branches ||
            c.unit * c.branches > 2 * max_memory / (c.branches - 1))
            throw std::invalid_argument("convolutional interleaver: branches*(branches-1)/2*unit above 1 GiB");
        return;
    }
    throw std::invalid_argument("interleaver: unknown kind");
}

class pass_through final : public channel_interleaver {
public:
    explicit pass_through(const interleaver_config& c) : cfg_(c) {}
    result process(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) override {
        if (in.size() != out.size()) return {0, false, size_mismatch};
        if (in.data() != out.data() && !in.empty()) std::memmove(out.data(), in.data(), in.size());
        return {in.size(), true, nullptr};
    }
    void reset() override {}
    const interleaver_config& config() const override { return cfg_; }

private:
    interleaver_config cfg_;
};

// Double buffer: block b is written while block b-1 is read in permuted
// order, so every symbol waits exactly one block plus its permutation offset.
class block_side final : public channel_interleaver {
public:
    block_side(const interleaver_config& c, bool deinterleave)
        : cfg_(c), n_(c.rows * c.cols), fill_(n_), ready_(n_), deinterleave_(deinterleave) {}

    result process(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) override {
        if (in.size() != out.size()) return {0, false, size_mismatch};
        const std::size_t rows = cfg_.rows, cols = cfg_.cols;
        // Read order: interleaver reads column-major (p -> (p % rows) * cols + p / rows),
        // deinterleaver row-major over the transposed block (k -> (k % cols) * rows + k / cols).
        const std::size_t outer = deinterleave_ ? cols : rows;
        const std::size_t stride = deinterleave_ ? rows : cols;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const std::uint8_t v = in[i];
            out[i] = ready_[(pos_ % outer) * stride + pos_ / outer];
            fill_[pos_] = v;
            if (++pos_ == n_) {
                fill_.swap(ready_);
                pos_ = 0;
            }
        }
        return {in.size(), true, nullptr};
    }
    void reset() override {
        std::fill(fill_.begin(), fill_.end(), std::uint8_t{0});
        std::fill(ready_.begin(), ready_.end(), std::uint8_t{0});
        pos_ = 0;
    }
    const interleaver_config& config() const override { return cfg_; }

private:
    interleaver_config cfg_;
    std::size_t n_;
    std::vector<std::uint8_t> fill_, ready_;
    std::size_t pos_ = 0;
    bool deinterleave_;
};

// All branch FIFOs live in one array; branch j is a ring of len(j) symbols.
class convolutional_side final : public channel_interleaver {
public:
    convolutional_side(const interleaver_config& c, bool deinterleave)
        : cfg_(c), len_(c.branches), start_(c.branches), pos_(c.branches) {
        std::size_t total = 0;
        for (std::size_t j = 0; j < c.branches; ++j) {
            len_[j] = (deinterleave ? c.branches - 1 - j : j) * c.unit;
            start_[j] = total;
            total += len_[j];
        }
        mem_.assign(total, 0);
    }

    result process(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) override {
        if (in.size() != out.size()) return {0, false, size_mismatch};
        const std::size_t b = cfg_.branches;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const std::uint8_t v = in[i];
            const std::size_t len = len_[branch_];
            if (len == 0) {
                out[i] = v;
            } else {
                std::size_t& p = pos_[branch_];
                std::uint8_t& cell = mem_[start_[branch_] + p];
                out[i] = cell;
                cell = v;
                if (++p == len) p = 0;
            }
            if (++branch_ == b) branch_ = 0;
        }
        return {in.size(), true, nullptr};
    }
    void reset() override {
        std::fill(mem_.begin(), mem_.end(), std::uint8_t{0});
        std::fill(pos_.begin(), pos_.end(), std::size_t{0});
        branch_ = 0;
    }
    const interleaver_config& config() const override { return cfg_; }

private:
    interleaver_config cfg_;
    std::vector<std::size_t> len_, start_, pos_;
    std::vector<std::uint8_t> mem_;
    std::size_t branch_ = 0;
};

std::unique_ptr<channel_interleaver> create(const interleaver_config& cfg, bool deinterleave) {
    validate(cfg);
    switch (cfg.kind) {
    case interleaver_kind::block: return std::make_unique<block_side>(cfg, deinterleave);
    case interleaver_kind::convolutional: return std::make_unique<convolutional_side>(cfg, deinterleave);
    case interleaver_kind::none: break;
    }
    return std::make_unique<pass_through>(cfg);
}

}  // namespace

interleaver_config convolutional_for_span(std::size_t branches, std::size_t span_symbols) {
    if (branches < 2) throw std::invalid_argument("convolutional interleaver: branches must be >= 2");
    if (span_symbols == 0 || span_symbols % branches != 0)
        throw std::invalid_argument("convolutional interleaver: span of " + std::to_string(span_symbols) +
                                    " symbols is not a positive multiple of branches (" + std::to_string(branches) +
                                    ")");
    interleaver_config c;
    c.kind = interleaver_kind::convolutional;
    c.branches = branches;
    c.unit = span_symbols / branches;
    validate(c);
    return c;
}

interleaver_config convolutional_for_span_ms(std::size_t branches, double span_ms, double symbol_rate) {
    if (!(span_ms > 0) || !(symbol_rate > 0) || !std::isfinite(span_ms * symbol_rate))
        throw std::invalid_argument("convolutional interleaver: span_ms and symbol_rate must be positive");
    const double symbols = span_ms * symbol_rate / 1000.0;
    const double whole = std::round(symbols);
    if (std::fabs(symbols - whole) > 1e-6 * std::max(1.0, symbols) || whole > 1e15)
        throw std::invalid_argument("convolutional interleaver: a span of " + std::to_string(span_ms) + " ms at " +
                                    std::to_string(symbol_rate) + " symbols/s is not a whole number of symbols");
    return convolutional_for_span(branches, static_cast<std::size_t>(whole));
}

std::size_t interleaver_span(const interleaver_config& c) {
    switch (c.kind) {
    case interleaver_kind::block: return c.rows;
    case interleaver_kind::convolutional: return c.branches * c.unit;
    case interleaver_kind::none: break;
    }
    return 0;
}

std::size_t interleaver_pair_delay(const interleaver_config& c) {
    switch (c.kind) {
    case interleaver_kind::block: return 2 * c.rows * c.cols;
    case interleaver_kind::convolutional: return c.branches * (c.branches - 1) * c.unit;
    case interleaver_kind::none: break;
    }
    return 0;
}

std::size_t interleaver_memory(const interleaver_config& c) {
    switch (c.kind) {
    case interleaver_kind::block: return 2 * c.rows * c.cols;
    case interleaver_kind::convolutional: return c.branches * (c.branches - 1) / 2 * c.unit;
    case interleaver_kind::none: break;
    }
    return 0;
}

std::unique_ptr<channel_interleaver> create_interleaver(const interleaver_config& cfg) { return create(cfg, false); }
std::unique_ptr<channel_interleaver> create_deinterleaver(const interleaver_config& cfg) { return create(cfg, true); }

}  // namespace qlink::modem
