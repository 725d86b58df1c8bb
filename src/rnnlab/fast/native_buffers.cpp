// Reused buffers of the whole-sequence kernels (rnnlab.fast.native).
//
// A training step of a normalised LSTM allocates about 70 MB of [T, B, ...] tensors (the saved
// activations and their gradients) and frees them again. glibc gives such blocks back to the
// system (it trims the top of its heap), so the next step takes them anew and touches every page
// for the first time: measured here, 16,600 page faults and a third of the step's time in the
// kernel. The kernels therefore take their [T, B, ...] outputs from this pool: a freed buffer
// waits here, keyed by its exact size, for the next call that asks for that size. Idle buffers
// are bounded by a limit in bytes (the oldest go first; 0 turns the pool off).

#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>
#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <list>
#include <mutex>
#include <utility>

namespace rnnlab_buffers {

class BufferPool {
 public:
  // Never destroyed: tensors may be freed while the process exits, after static destructors.
  static BufferPool& instance() {
    static BufferPool* pool = new BufferPool();
    return *pool;
  }

  // An uninitialised contiguous tensor whose memory comes back here when it is freed.
  at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    int64_t numel = 1;
    for (const int64_t s : sizes) numel *= s;
    const size_t bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
    if (bytes == 0) return at::empty(sizes, options);
    void* data = take(bytes);
    return at::from_blob(data, sizes, [bytes](void* p) { BufferPool::instance().give(p, bytes); },
                         options.device(at::kCPU));
  }

  // Sets the limit of idle bytes, frees what is over it; returns the previous limit.
  int64_t set_limit(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t previous = static_cast<int64_t>(limit_);
    limit_ = static_cast<size_t>(bytes < 0 ? 0 : bytes);
    shrink_to(limit_);
    return previous;
  }

  int64_t idle_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(idle_);
  }

 private:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = idle_list_.rbegin(); it != idle_list_.rend(); ++it) {  // newest first
        if (it->first == bytes) {
          void* p = it->second;
          idle_ -= bytes;
          idle_list_.erase(std::next(it).base());
          return p;
        }
      }
    }
    void* p = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    TORCH_CHECK(p != nullptr, "rnnlab: out of memory allocating ", bytes, " bytes");
    return p;
  }

  void give(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (bytes > limit_) {
      std::free(p);
      return;
    }
    shrink_to(limit_ - bytes);
    idle_list_.emplace_back(bytes, p);
    idle_ += bytes;
  }

  // Frees the oldest idle buffers until at most `bytes` are idle (the lock held).
  void shrink_to(size_t bytes) {
    while (idle_ > bytes && !idle_list_.empty()) {
      std::free(idle_list_.front().second);
      idle_ -= idle_list_.front().first;
      idle_list_.pop_front();
    }
  }

  static constexpr size_t kAlignment = 64;  // as torch's CPU allocator
  std::mutex mutex_;
  std::list<std::pair<size_t, void*>> idle_list_;  // oldest first
  size_t idle_ = 0;
  size_t limit_ = size_t(1) << 30;
};

// The kernels' [T, B, ...] outputs: from the pool.
inline at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return BufferPool::instance().empty(sizes, options);
}

int64_t set_buffer_pool_limit(int64_t bytes) { return BufferPool::instance().set_limit(bytes); }

int64_t buffer_pool_bytes() { return BufferPool::instance().idle_bytes(); }

}  // namespace rnnlab_buffers
