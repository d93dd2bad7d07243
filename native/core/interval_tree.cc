#include "core/interval_tree.h"

namespace rdma {

static bool Before(const IntervalNode* a, const IntervalNode* b) {
  return a->start != b->start ? a->start < b->start : a < b;
}

static void Update(IntervalNode* n) {
  uintptr_t max_end = n->end;
  if (n->left != nullptr && n->left->max_end > max_end) max_end = n->left->max_end;
  if (n->right != nullptr && n->right->max_end > max_end) max_end = n->right->max_end;
  n->max_end = max_end;
}

// Splits `n` into the nodes before `key` (left) and the rest (right).
static void Split(IntervalNode* n, const IntervalNode* key, IntervalNode** left, IntervalNode** right) {
  if (n == nullptr) {
    *left = *right = nullptr;
  } else if (Before(n, key)) {
    Split(n->right, key, &n->right, right);
    Update(n);
    *left = n;
  } else {
    Split(n->left, key, left, &n->left);
    Update(n);
    *right = n;
  }
}

// Joins two treaps where every node of `a` orders before every node of `b`.
static IntervalNode* Merge(IntervalNode* a, IntervalNode* b) {
  if (a == nullptr) return b;
  if (b == nullptr) return a;
  if (a->priority > b->priority) {
    a->right = Merge(a->right, b);
    Update(a);
    return a;
  }
  b->left = Merge(a, b->left);
  Update(b);
  return b;
}

uint32_t IntervalTree::NextPriority() {
  // xorshift64*: priorities only need to be independent of the keys.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return static_cast<uint32_t>((rng_ * 0x2545f4914f6cdd1dULL) >> 32);
}

void IntervalTree::Insert(IntervalNode* node) {
  node->priority = NextPriority();
  node->left = node->right = nullptr;
  node->max_end = node->end;
  IntervalNode *left, *right;
  Split(root_, node, &left, &right);
  root_ = Merge(Merge(left, node), right);
  size_++;
}

static IntervalNode* EraseFrom(IntervalNode* n, IntervalNode* node) {
  if (n == node) return Merge(n->left, n->right);
  if (Before(node, n)) n->left = EraseFrom(n->left, node);
  else n->right = EraseFrom(n->right, node);
  Update(n);
  return n;
}

void IntervalTree::Erase(IntervalNode* node) {
  root_ = EraseFrom(root_, node);
  node->left = node->right = nullptr;
  size_--;
}

}  // namespace rdma
