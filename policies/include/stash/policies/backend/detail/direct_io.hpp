// Staged packs written with O_DIRECT from aligned blocks, on writer threads of the backend's.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/core/bytes.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

namespace stash::policies::backend::detail {

/** The writer threads and the blocks of a local backend's direct writes (`direct_io::open`).

    Why: a pack written through the page cache costs the CPU a copy into the cache, the cache's
    bookkeeping (delayed allocation, buffer heads) and its write-back, and its time varies with the
    write-back: a 2 GB backup on 2 cores took 1.0–1.7 s of system time and 3.14–4.74 s. With
    O_DIRECT the bytes go from a block to the device: 0.6–0.9 s of system time, 3.11–3.66 s (as
    fast where the write-back kept up, up to 12% faster where it did not). The page cache is also
    left to the data being backed up (and the application's), not filled with packs. Such a write
    returns once the device has the data, so writes run on threads of their own (`writers`, that
    many in flight) while the caller seals the next bytes.

    Bytes are copied into blocks of `block_size` (4 KiB-aligned, as O_DIRECT wants buffers, lengths
    and offsets), a full block queued for writing. Blocks are shared by the files: at most
    `max_blocks` in all (more only while none is being written, so a file never waits for nothing),
    kept from file to file. Errors of a write show in the file's next `append`, `flush` or `finish`. */
class direct_io : public std::enable_shared_from_this<direct_io> {
public:
    // Sixteen blocks of 512 KiB: once Rabin got faster, a 2 GB backup outran eight (the reader slept
    // 0.35 s waiting for one): 2.57 vs 2.75 s (5 runs each), as fast as eight of 1 MiB (2.53 s) with
    // a lower peak (51–54 vs 52–57 MiB; eight of 512 KiB: 47–51). A block is made only when all the
    // others are in use, as when the disk falls behind, so `linux`'s peak did not move (56.5–59.4
    // vs 56.6–58.1 MiB). More writers (4, 8) or smaller blocks were no faster; four blocks for each
    // file waited for the disk.
    static constexpr std::size_t block_size = 512 << 10;
    static constexpr std::size_t max_blocks = 16;
    static constexpr unsigned writers = 2;
    static constexpr std::size_t alignment = 4096;

    /// A writer for the staged file `fd`, which it switches to O_DIRECT; null when the file system
    /// has no direct I/O (the file is then written through the page cache).
    std::unique_ptr<staged_writer> open(int fd, std::string const& where) {
        int const flags = ::fcntl(fd, F_GETFL);
        if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) return nullptr;
        return std::make_unique<file>(shared_from_this(), fd, where);
    }

    ~direct_io() {
        {
            std::lock_guard lk(mu_);  // (the threads look for the stop under it: no lost wake-up)
            for (auto& t : threads_) t.request_stop();
        }
        cv_.notify_all();
    }

private:
    using block = std::unique_ptr<std::byte[], free_delete>;
    class file;
    struct job {
        file* f;
        block b;
        std::size_t len;
        std::uint64_t offset;
    };

    class file final : public staged_writer {
    public:
        file(std::shared_ptr<direct_io> io, int fd, std::string where) : io_(std::move(io)), fd_(fd), where_(std::move(where)) {}
        ~file() override {
            std::unique_lock lk(io_->mu_);
            io_->cv_.wait(lk, [&] { return in_flight_ == 0; });
            give_back_block();
        }

        result<void> append(byte_span data) override {
            while (!data.empty()) {
                if (!cur_) cur_ = io_->take();
                std::size_t const n = std::min(data.size(), block_size - fill_);
                std::memcpy(cur_.get() + fill_, data.data(), n);
                fill_ += n, data = data.subspan(n);
                if (fill_ == block_size) submit(block_size);
            }
            std::lock_guard lk(io_->mu_);
            return first_error();
        }

        result<void> flush() override {
            if (flushed_) return {};
            flushed_ = true;
            // O_DIRECT writes whole pages only: the last partial page goes through the cache, last.
            std::size_t const whole = fill_ / alignment * alignment;
            last_size_ = fill_ - whole;
            if (last_size_) std::memcpy(last_, cur_.get() + whole, last_size_);
            if (whole) submit(whole);
            std::lock_guard lk(io_->mu_);
            give_back_block();
            return first_error();
        }

        result<void> finish() override {
            STASH_TRYV(flush());
            {
                std::unique_lock lk(io_->mu_);
                io_->cv_.wait(lk, [&] { return in_flight_ == 0; });
                STASH_TRYV(first_error());
            }
            if (!last_size_) return {};
            stop_direct(fd_);  // (had it failed, the write would fail with EINVAL and say so)
            auto r = write_at(fd_, last_, last_size_, offset_, where_);
            offset_ += last_size_, last_size_ = 0;
            return r;
        }

        // On a writer thread.
        void write(job& j) {
            auto r = write_at(fd_, j.b.get(), j.len, j.offset, where_);
            std::lock_guard lk(io_->mu_);
            if (!r && !error_) error_ = r.error();
            io_->spare_.push_back(std::move(j.b));
            --in_flight_, --io_->in_flight_;
        }

    private:
        // The first error of this file's writes, which sticks. Pre: io_->mu_ held.
        result<void> first_error() const {
            if (error_) return *error_;
            return {};
        }

        // Returns the block being filled, if any, to the spare ones (its bytes are written or
        // copied out). Pre: io_->mu_ held.
        void give_back_block() {
            if (cur_) io_->spare_.push_back(std::move(cur_));
            io_->cv_.notify_all();
        }

        // Queues the first `len` bytes of the block being filled; the file takes another for more.
        void submit(std::size_t len) {
            {
                std::lock_guard lk(io_->mu_);
                ++in_flight_, ++io_->in_flight_;
                io_->queue_.push_back({this, std::move(cur_), len, offset_});
                io_->start();
            }
            io_->cv_.notify_all();
            offset_ += len, fill_ = 0;
        }

        // Clears O_DIRECT: true if it was set and now is not; errno as it was.
        static bool stop_direct(int fd) noexcept {
            int const saved = errno, flags = ::fcntl(fd, F_GETFL);
            bool const done = flags >= 0 && (flags & O_DIRECT) && ::fcntl(fd, F_SETFL, flags & ~O_DIRECT) == 0;
            errno = saved;
            return done;
        }

        static result<void> write_at(int fd, std::byte const* p, std::size_t len, std::uint64_t offset, std::string const& where) {
            for (std::size_t done = 0; done < len;) {
                ssize_t n = ::pwrite(fd, p + done, len - done, off_t(offset + done));
                if (n < 0 && errno == EINTR) continue;
                // A file system that took the flag but wants other alignment: through the cache.
                if (n < 0 && errno == EINVAL && stop_direct(fd)) continue;
                if (n < 0) return errno_error("write a staged file in " + where);
                done += std::size_t(n);
            }
            return {};
        }

        std::shared_ptr<direct_io> io_;
        int fd_;
        std::string where_;
        block cur_;                 // being filled (null before the first byte after a submit)
        std::size_t fill_ = 0;      // bytes in it
        std::uint64_t offset_ = 0;  // where in the file they go
        bool flushed_ = false;
        std::byte last_[alignment];       // the last partial page, once flushed
        std::size_t last_size_ = 0;
        unsigned in_flight_ = 0;          // blocks queued or being written (guarded by io_->mu_)
        std::optional<error> error_;      // the first write's error (guarded by io_->mu_)
    };

    // A block for a file to fill: a spare one, a new one while there are fewer than max_blocks (or
    // none is being written), else the next to come back from a writer.
    block take() {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return !spare_.empty() || blocks_ < max_blocks || in_flight_ == 0; });
        if (!spare_.empty()) {
            block b = std::move(spare_.back());
            spare_.pop_back();
            return b;
        }
        ++blocks_;
        lk.unlock();
        void* p = std::aligned_alloc(alignment, block_size);
        if (!p) throw std::bad_alloc();
        return block(static_cast<std::byte*>(p));
    }

    // Starts the writer threads on the first write. Pre: mu_ held.
    void start() {
        if (!threads_.empty()) return;
        for (unsigned i = 0; i < writers; ++i)
            threads_.emplace_back([this](std::stop_token st) {
                std::unique_lock lk(mu_);
                for (;;) {
                    cv_.wait(lk, [&] { return !queue_.empty() || st.stop_requested(); });
                    if (queue_.empty()) return;
                    job j = std::move(queue_.front());
                    queue_.pop_front();
                    lk.unlock();
                    j.f->write(j);
                    lk.lock();
                    cv_.notify_all();
                }
            });
    }

    std::mutex mu_;
    std::condition_variable cv_;  // a block written or given back, a job queued, a stop
    std::deque<job> queue_;
    std::vector<block> spare_;
    std::size_t blocks_ = 0, in_flight_ = 0;  // blocks made; blocks queued or being written
    std::vector<std::jthread> threads_;
};

}  // namespace stash::policies::backend::detail
