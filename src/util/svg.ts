import sharp from 'sharp';
import { writeFileAtomic } from '../io/atomic';

/** Escapes text for use inside SVG/HTML element content or attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Renders an SVG document to PNG with sharp (librsvg), so every picture graft makes has one code path. */
export async function svgToPng(svg: string, density = 144): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density }).png().toBuffer();
}

/** Writes an SVG document as a PNG file atomically. */
export async function writeSvgAsPng(svg: string, file: string): Promise<void> {
  await writeFileAtomic(file, await svgToPng(svg));
}
