// Receive-path fuzz entry point: fixed keys and layout so every input is judged the same way.
#include "link_rx_target.hpp"

#include "qlink/modem/aos_frame.hpp"
#include "qlink/modem/arq.hpp"
#include "qlink/modem/key_source.hpp"
#include "qlink/modem/sdls.hpp"
#include "qlink/modem/space_packet.hpp"

#include <algorithm>
#include <array>
#include <span>

namespace qlink::fuzz {

namespace {

using namespace qlink::modem;

constexpr std::uint8_t spacecraft = 0x42;
constexpr std::uint8_t vcid = 1;

aos_layout layout(bool secure)
{
    const aos_layout clear{link_rx_frame_length, 0, 0, 0, true};
    return secure ? sdls_layout(clear) : clear;
}

void fill_keys(memory_key_source& s)
{
    for (std::uint32_t id = 1; id <= 2; ++id) {
        std::array<std::uint8_t, link_key_length> k{};
        for (std::size_t i = 0; i < k.size(); ++i) {
            k[i] = static_cast<std::uint8_t>(i * 7 + id);
        }
        s.add(id, k);
    }
}

arq_sender::config small_sender()
{
    arq_sender::config c;
    c.window = 64;
    c.max_payload = 64;
    c.max_streams = 4;
    return c;
}

arq_receiver::config small_receiver()
{
    arq_receiver::config c;
    c.window = 64;
    c.max_payload = 64;
    c.max_streams = 4;
    c.sack_bits = 64;
    return c;
}

struct null_sink : arq_receiver::sink {
    std::uint64_t bytes = 0;
    void deliver(std::uint16_t, std::uint64_t, std::span<const std::uint8_t> d) override { bytes += d.size(); }
};

constexpr int seed_segments = 4;

void prime_sender(arq_sender& s)
{
    std::array<std::uint8_t, 200> user{};
    for (std::size_t i = 0; i < user.size(); ++i) {
        user[i] = static_cast<std::uint8_t>(i);
    }
    s.submit(1, user);
}

} // namespace

int link_rx_one_input(const std::uint8_t* data, std::size_t size, link_rx_stats* stats)
{
    if (size == 0) {
        return 0;
    }
    const bool secure = (data[0] & 1u) != 0;
    // The fuzzer cannot forge a CRC by chance; recomputing it lets mutations reach the header,
    // security and packet layers behind it.
    const bool fix_fecf = (data[0] & 2u) != 0;
    memory_key_source keys;
    fill_keys(keys);
    sdls_receiver::config sc;
    sc.layout = layout(true);
    sdls_receiver verifier(sc, keys);

    null_sink sink;
    arq_receiver arq_rx(small_receiver(), sink);
    arq_sender arq_tx(small_sender());
    prime_sender(arq_tx); // same segments in flight as the seeds' acks name
    {
        std::array<std::uint8_t, 128> seg{};
        for (int k = 0; k < seed_segments; ++k) {
            arq_tx.poll_transmit(arq_time{k}, seg);
        }
    }
    aos_receiver::config rc;
    rc.layout = layout(secure);
    rc.spacecraft_id = spacecraft;
    rc.vcids = {vcid};
    rc.max_packet_length = 4096;
    aos_receiver rx(
        rc,
        [&](std::uint8_t, std::span<const std::uint8_t> packet) {
            if (packet.size() <= 6) {
                return;
            }
            const auto body = packet.subspan(6);
            arq_rx.on_frame(arq_time{0}, body);
            arq_tx.on_ack(arq_time{0}, body);
        },
        secure ? &verifier : nullptr);

    std::array<std::uint8_t, link_rx_frame_length> frame{};
    for (std::size_t at = 1; at < size; at += link_rx_frame_length) {
        const std::size_t n = std::min(link_rx_frame_length, size - at);
        std::copy(data + at, data + at + n, frame.begin());
        if (fix_fecf && n == link_rx_frame_length) {
            write_fecf(frame);
        }
        rx.on_frame(std::span(frame.data(), n));
    }
    // ARQ parsing straight from the raw bytes too (it sits behind authentication in the real
    // chain, but must still survive anything).
    arq_rx.on_frame(arq_time{0}, std::span(data + 1, size - 1));
    arq_tx.on_ack(arq_time{0}, std::span(data + 1, size - 1));
    if (stats != nullptr) {
        stats->frames += rx.counters().frames;
        stats->security_rejected += rx.counters().security_rejected;
        stats->packets += rx.counters().packets;
        stats->arq_bytes_delivered += sink.bytes;
        stats->acks_accepted += arq_tx.counters().acks_received;
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> link_rx_seed_corpus()
{
    std::vector<std::vector<std::uint8_t>> corpus;
    for (const bool secure : {true, false}) {
        memory_key_source keys;
        fill_keys(keys);
        sdls_transmitter::config tc;
        tc.layout = layout(true);
        sdls_transmitter protector(tc, keys);
        aos_transmitter::config ac;
        ac.layout = layout(secure);
        ac.spacecraft_id = spacecraft;
        ac.channels = {{vcid, 0}};
        aos_transmitter tx(ac, secure ? &protector : nullptr);

        // ARQ traffic: data segments from a sender, and the acks a receiver makes of them.
        arq_sender s(small_sender());
        null_sink sink;
        arq_receiver r(small_receiver(), sink);
        prime_sender(s);
        std::array<std::uint8_t, 128> seg{};
        std::array<std::uint8_t, 4096> pkt{};
        std::vector<std::uint8_t> input{static_cast<std::uint8_t>(secure ? 3 : 2)};
        std::uint16_t count = 0;
        for (int k = 0; k < seed_segments; ++k) {
            const auto t = s.poll_transmit(arq_time{k}, seg);
            if (t.bytes == 0) {
                break;
            }
            for (const bool as_ack : {false, true}) {
                std::span<const std::uint8_t> body(seg.data(), t.bytes);
                std::array<std::uint8_t, 128> ack{};
                if (as_ack) {
                    r.on_frame(arq_time{k}, body);
                    body = std::span<const std::uint8_t>(ack.data(), r.build_ack(arq_time{k}, ack));
                }
                space_packet_header h;
                h.apid = 0x100;
                h.sequence_count = count++;
                h.data_length = static_cast<std::uint32_t>(body.size());
                const std::size_t n = write_space_packet(h, body, pkt);
                tx.channel(vcid)->push_packet(std::span(pkt.data(), n));
            }
            std::array<std::uint8_t, link_rx_frame_length> f{};
            tx.next_frame(f);
            input.insert(input.end(), f.begin(), f.end());
            if (k % 2 == 1) {
                corpus.push_back(input);
            }
        }
        while (tx.channel(vcid)->has_data()) {
            std::array<std::uint8_t, link_rx_frame_length> f{};
            tx.next_frame(f);
            input.insert(input.end(), f.begin(), f.end());
        }
        corpus.push_back(input);
    }
    return corpus;
}

} // namespace qlink::fuzz
