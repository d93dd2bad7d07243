// An intrusive interval tree over half-open address ranges [start, end): a treap ordered by (start, node
// address) whose nodes carry the largest `end` of their subtree, so "which ranges cover [a, b)" and "which
// ranges overlap [a, b)" visit only the subtrees that can answer. No allocation: the caller owns nodes.
// Not thread-safe (each registration cache is used from its own JS thread).
#pragma once
#include <cstddef>
#include <cstdint>

namespace rdma {

struct IntervalNode {
  uintptr_t start = 0;
  uintptr_t end = 0;
  uintptr_t max_end = 0;  // of this subtree
  uint32_t priority = 0;
  IntervalNode* left = nullptr;
  IntervalNode* right = nullptr;
};

class IntervalTree {
 public:
  // `node->start < node->end` must hold; the node must not be in a tree.
  void Insert(IntervalNode* node);
  // The node must be in this tree.
  void Erase(IntervalNode* node);
  size_t size() const { return size_; }

  // fn(IntervalNode*) -> bool (false stops) for each node with start <= `start` and end >= `end`.
  template <class Fn>
  bool ForEachCovering(uintptr_t start, uintptr_t end, Fn&& fn) const {
    return Covering(root_, start, end, fn);
  }
  // fn(IntervalNode*) -> bool (false stops) for each node overlapping [start, end).
  template <class Fn>
  bool ForEachOverlap(uintptr_t start, uintptr_t end, Fn&& fn) const {
    return Overlap(root_, start, end, fn);
  }

 private:
  template <class Fn>
  static bool Covering(const IntervalNode* n, uintptr_t start, uintptr_t end, Fn& fn) {
    if (n == nullptr || n->max_end < end) return true;
    if (!Covering(n->left, start, end, fn)) return false;
    if (n->start > start) return true;  // n and its right subtree start too late
    if (n->end >= end && !fn(const_cast<IntervalNode*>(n))) return false;
    return Covering(n->right, start, end, fn);
  }
  template <class Fn>
  static bool Overlap(const IntervalNode* n, uintptr_t start, uintptr_t end, Fn& fn) {
    if (n == nullptr || n->max_end <= start) return true;
    if (!Overlap(n->left, start, end, fn)) return false;
    if (n->start >= end) return true;
    if (n->end > start && !fn(const_cast<IntervalNode*>(n))) return false;
    return Overlap(n->right, start, end, fn);
  }

  uint32_t NextPriority();

  IntervalNode* root_ = nullptr;
  size_t size_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ULL;
};

}  // namespace rdma
