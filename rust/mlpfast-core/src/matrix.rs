//! Borrowed matrix views: a slice plus rows, columns and strides.
//!
//! Every buffer in mlpfast is a row-major `rows × cols` slice. A [`MatRef`] looks at one
//! with explicit strides, so that a transpose ([`MatRef::t`]) or a block of rows
//! ([`MatRef::row_block`]) is a new view of the same memory, never a copy. The GEMM kernel
//! reads views directly.

/// A read-only `rows × cols` view: element (i, j) is `data[i * row_stride + j * col_stride]`.
#[derive(Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<T> Clone for MatRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for MatRef<'_, T> {}

impl<'a, T: Copy> MatRef<'a, T> {
    /// A view of a row-major, contiguous `rows × cols` buffer.
    ///
    /// # Panics
    /// When `data.len() != rows * cols`: callers size their buffers from the same shapes,
    /// so a mismatch is a bug in mlpfast, not bad input.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix buffer of {} elements viewed as {rows}x{cols}",
            data.len()
        );
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance in elements between (i, j) and (i + 1, j).
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Distance in elements between (i, j) and (i, j + 1).
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Rows `start..end` of a row-major view, without copying.
    pub fn row_block(self, start: usize, end: usize) -> Self {
        assert!(
            start <= end && end <= self.rows,
            "row block {start}..{end} of {}",
            self.rows
        );
        assert_eq!(self.col_stride, 1, "row_block needs a row-major view");
        let data = if start == end {
            &self.data[..0]
        } else {
            &self.data[start * self.row_stride..(end - 1) * self.row_stride + self.cols]
        };
        MatRef {
            data,
            rows: end - start,
            ..self
        }
    }

    /// Columns `start..end`, without copying.
    pub fn col_block(self, start: usize, end: usize) -> Self {
        assert!(
            start <= end && end <= self.cols,
            "column block {start}..{end} of {}",
            self.cols
        );
        let offset = if start == end {
            0
        } else {
            start * self.col_stride
        };
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            cols: end - start,
            ..self
        }
    }

    /// Row `i` of a row-major view.
    pub fn row(&self, i: usize) -> &'a [T] {
        assert_eq!(self.col_stride, 1, "row() needs a row-major view");
        &self.data[i * self.row_stride..i * self.row_stride + self.cols]
    }

    /// Element (i, j).
    pub fn at(&self, i: usize, j: usize) -> T {
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// The underlying memory, from the first element to the last one the view can reach.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// The whole matrix as one row-major slice, when it is laid out that way.
    pub fn as_row_major(&self) -> Option<&'a [T]> {
        (self.col_stride == 1 && (self.row_stride == self.cols || self.rows <= 1))
            .then(|| &self.data[..self.rows * self.cols])
    }

    /// True when the view reaches no element outside its slice (checked before raw GEMM calls).
    pub(crate) fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_row_blocks_share_memory() {
        let data: Vec<i32> = (0..6).collect();
        let m = MatRef::new(&data, 2, 3);
        assert_eq!(m.at(1, 2), 5);
        let t = m.t();
        assert_eq!((t.rows(), t.cols()), (3, 2));
        assert_eq!(t.at(2, 1), 5);
        assert_eq!(t.at(0, 1), 3);
        let b = m.row_block(1, 2);
        assert_eq!(b.row(0), &[3, 4, 5]);
        assert_eq!(b.as_row_major(), Some(&[3, 4, 5][..]));
        assert!(t.as_row_major().is_none());
        assert!(m.in_bounds() && t.in_bounds() && b.in_bounds());
    }
}
