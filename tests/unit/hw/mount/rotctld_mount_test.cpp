// Tests the rotctld client against Debian's real rotctld (Hamlib dummy rotator, model 1).
#include "qlink/hw/mount.hpp"
#include "support/child_process.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cmath>
#include <cstring>
#include <thread>

namespace qlink::hw {
namespace {

using namespace std::chrono_literals;

class rotctld_fixture : public ::testing::Test {
protected:
    void SetUp() override {
        port_ = test::free_tcp_port();
        start_server();
        rotctld_config cfg;
        cfg.port = port_;
        cfg.timeout = 500ms;
        cfg.limits = {-180.0, 450.0, 0.0, 180.0};  // let the device, not the client, refuse el 100
        mount_ = create_rotctld_mount(cfg);
    }

    void start_server() {
        server_ = std::make_unique<test::child_process>(std::vector<std::string>{
            "rotctld", "-m", "1", "-T", "127.0.0.1", "-t", std::to_string(port_)});
        ASSERT_TRUE(test::wait_for_tcp(port_)) << "rotctld did not start (is libhamlib-utils installed?)";
    }

    /// The dummy rotator slews; poll (bounded) until it reports the target.
    bool wait_until_at(az_el target) {
        for (int i = 0; i < 300; ++i) {
            az_el now;
            if (!mount_->get_position(now)) return false;
            if (std::abs(now.az_deg - target.az_deg) < 0.05 && std::abs(now.el_deg - target.el_deg) < 0.05)
                return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    unsigned short port_ = 0;
    std::unique_ptr<test::child_process> server_;
    std::unique_ptr<mount> mount_;
};

TEST_F(rotctld_fixture, moves_and_reports_position) {
    // The dummy rotator slews at 6 deg/s: keep the move small.
    ASSERT_TRUE(mount_->set_position({3.0, 4.5}));
    EXPECT_TRUE(wait_until_at({3.0, 4.5}));
    // Beyond north on a 450-degree mount: accepted and moving the right way.
    ASSERT_TRUE(mount_->set_position({400.0, 4.5}));
    std::this_thread::sleep_for(300ms);
    az_el pos;
    ASSERT_TRUE(mount_->get_position(pos));
    EXPECT_GT(pos.az_deg, 3.0);
    EXPECT_EQ(mount_->counters().rejected, 0u);
}

TEST_F(rotctld_fixture, device_refusal_is_rejected_not_a_link_error) {
    mount_result r = mount_->set_position({90.0, 100.0});  // the dummy's elevation stops at 90
    EXPECT_EQ(r.code, mount_errc::rejected);
    EXPECT_EQ(r.rprt, -1);
    EXPECT_NE(r.message.find("RPRT -1"), std::string::npos);
    EXPECT_EQ(mount_->counters().rejected, 1u);
    // The connection is still good.
    az_el pos;
    EXPECT_TRUE(mount_->get_position(pos));
}

TEST_F(rotctld_fixture, client_limits_checked_before_sending) {
    mount_result r = mount_->set_position({500.0, 10.0});
    EXPECT_EQ(r.code, mount_errc::out_of_range);
    EXPECT_EQ(mount_->counters().commands, 0u);
}

TEST_F(rotctld_fixture, stop_and_park) {
    ASSERT_TRUE(mount_->set_position({30.0, 30.0}));
    EXPECT_TRUE(mount_->stop());
    EXPECT_TRUE(mount_->park());
}

TEST_F(rotctld_fixture, silent_server_is_a_timeout_then_recovers) {
    server_->signal(SIGSTOP);
    az_el pos;
    mount_result r = mount_->get_position(pos);
    EXPECT_EQ(r.code, mount_errc::timeout) << r.message;
    EXPECT_EQ(mount_->counters().timeouts, 1u);
    server_->signal(SIGCONT);
    EXPECT_TRUE(mount_->get_position(pos));
    EXPECT_GE(mount_->counters().reconnects, 1u);
}

TEST_F(rotctld_fixture, server_restart_reconnects) {
    az_el pos;
    ASSERT_TRUE(mount_->get_position(pos));
    server_->kill(SIGKILL);
    mount_result down = mount_->get_position(pos);
    EXPECT_EQ(down.code, mount_errc::disconnected) << down.message;
    start_server();
    EXPECT_TRUE(mount_->set_position({15.0, 25.0}));
    EXPECT_GE(mount_->counters().reconnects, 1u);
}

/// A server that answers every line with garbage.
TEST(rotctld_mount, garbage_reply_is_a_protocol_error) {
    int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    ::listen(lfd, 4);
    std::thread server([lfd] {
        for (int i = 0; i < 2; ++i) {
            int c = ::accept(lfd, nullptr, nullptr);
            if (c < 0) return;
            char buf[64];
            if (::recv(c, buf, sizeof buf, 0) > 0) {
                const char* reply = i == 0 ? "hello there\n" : "12.5\nnot-a-number\n";
                ::send(c, reply, std::strlen(reply), MSG_NOSIGNAL);
            }
            std::this_thread::sleep_for(50ms);
            ::close(c);
        }
    });
    rotctld_config cfg;
    cfg.port = ntohs(a.sin_port);
    cfg.timeout = 500ms;
    auto m = create_rotctld_mount(cfg);
    EXPECT_EQ(m->set_position({1.0, 2.0}).code, mount_errc::protocol);
    az_el pos;
    EXPECT_EQ(m->get_position(pos).code, mount_errc::protocol);
    EXPECT_EQ(m->counters().protocol_errors, 2u);
    server.join();
    ::close(lfd);
}

TEST(rotctld_mount, nobody_listening_is_disconnected) {
    rotctld_config cfg;
    cfg.port = test::free_tcp_port();
    cfg.timeout = 300ms;
    auto m = create_rotctld_mount(cfg);
    EXPECT_EQ(m->stop().code, mount_errc::disconnected);
}

}  // namespace
}  // namespace qlink::hw
