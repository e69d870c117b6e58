// lazy_deque.h - a std::deque made on its first element. libstdc++'s deque
// allocates its map and a 512-byte node even while empty; a socket has three
// queues that an idle connection never uses, and thousands of idle
// connections would each pay for them (bench section 4b).
#ifndef SCIF_NET_LAZY_DEQUE_H_
#define SCIF_NET_LAZY_DEQUE_H_

#include <deque>
#include <memory>
#include <utility>

namespace scifnet {

template <typename T>
class LazyDeque {
 public:
  bool empty() const { return !q_ || q_->empty(); }
  size_t size() const { return q_ ? q_->size() : 0; }
  // Only on a non-empty queue, as std::deque's.
  T& front() { return q_->front(); }
  T& back() { return q_->back(); }
  void pop_front() { q_->pop_front(); }
  // The first element pred holds for, or null.
  template <typename Pred>
  T* Find(Pred pred) {
    if (q_)
      for (T& v : *q_)
        if (pred(v)) return &v;
    return nullptr;
  }
  void clear() {
    if (q_) q_->clear();
  }
  void push_back(T v) { Made().push_back(std::move(v)); }
  template <typename... Args>
  T& emplace_back(Args&&... args) {
    return Made().emplace_back(std::forward<Args>(args)...);
  }

 private:
  std::deque<T>& Made() {
    if (!q_) q_ = std::make_unique<std::deque<T>>();
    return *q_;
  }
  std::unique_ptr<std::deque<T>> q_;
};

}  // namespace scifnet

#endif
